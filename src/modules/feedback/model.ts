import { t } from "elysia";
import {
  IDENTIFIER_TEXT,
  isIdentifierText,
  isPlainText,
  NOT_IDENTIFIER_TEXT,
  NOT_PLAIN_TEXT,
  PLAIN_TEXT,
} from "../../lib/formats";
import { documentedAs } from "../../lib/openapi-shape";
import { invalidField } from "../../lib/problem";
import { dateTime, oneOf, pageLimit, ulidCursor } from "../auth/model";

export const SUBJECT_TYPES = ["alert", "incident", "recommendation"] as const;
export const VERDICTS = ["useful", "not_useful", "false_positive", "true_positive"] as const;
export type SubjectType = (typeof SUBJECT_TYPES)[number];
export type Verdict = (typeof VERDICTS)[number];

const MAX_LABELS = 20;
const MAX_LABEL_KEY = 100;
const MAX_LABEL_VALUE = 200;

export const feedbackRequest = t.Object(
  {
    subject_type: oneOf(SUBJECT_TYPES, { description: "What the feedback is about." }),
    subject_id: t.String({ minLength: 1, maxLength: 200, format: IDENTIFIER_TEXT }),
    verdict: oneOf(VERDICTS),
    rating: t.Optional(t.Integer({ minimum: 1, maximum: 5 })),
    comment: t.Optional(t.String({ maxLength: 2000, format: PLAIN_TEXT })),
    // Not a t.Record: Elysia normalizes a record by copying the keys of whatever was sent, so
    // `"labels": "ab"` became {"0":"a","1":"b"} and `[]` became {} before any check ran.
    // checkLabels (below) validates it as sent.
    labels: t.Optional(
      t.Unknown({
        description: `An object of up to ${MAX_LABELS} string pairs: keys 1-${MAX_LABEL_KEY} characters, values up to ${MAX_LABEL_VALUE}.`,
        // A t.Unknown checks none of these (checkLabels does).
        ...documentedAs({
          type: "object",
          maxProperties: MAX_LABELS,
          propertyNames: { minLength: 1, maxLength: MAX_LABEL_KEY },
          additionalProperties: { type: "string", maxLength: MAX_LABEL_VALUE },
        }),
      }),
    ),
  },
  { additionalProperties: false },
);
export type FeedbackRequest = Omit<typeof feedbackRequest.static, "labels"> & { labels?: unknown };

/** Feedback labels as sent, or a 422 naming `labels` (or `labels.<key>` for a bad value). */
export function checkLabels(labels: unknown): Record<string, string> | undefined {
  if (labels === undefined) return undefined;
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw invalidField("labels", "Expected an object of string pairs");
  }
  let count = 0;
  for (const key in labels) {
    if (++count > MAX_LABELS) throw invalidField("labels", `Expected at most ${MAX_LABELS} labels`);
    if (key.length === 0 || key.length > MAX_LABEL_KEY) {
      throw invalidField("labels", `keys must be 1-${MAX_LABEL_KEY} characters`);
    }
    if (!isIdentifierText(key)) throw invalidField("labels", NOT_IDENTIFIER_TEXT);
    const value = (labels as Record<string, unknown>)[key];
    if (typeof value !== "string") throw invalidField(`labels.${key}`, "Expected string");
    if (!isPlainText(value)) throw invalidField(`labels.${key}`, NOT_PLAIN_TEXT);
    if (value.length > MAX_LABEL_VALUE) {
      throw invalidField(`labels.${key}`, `Expected string length less or equal to ${MAX_LABEL_VALUE}`);
    }
  }
  return labels as Record<string, string>;
}

export const accepted = t.Object({
  id: t.String(),
  expires_at: t.String({
    description: "RFC 3339 date-time (UTC); the entry and its indexes are gone after it.",
    ...documentedAs({ format: "date-time" }),
  }),
});

export const feedbackItem = t.Object({
  id: t.String(),
  subject_type: t.String(),
  subject_id: t.String(),
  verdict: t.String(),
  rating: t.Optional(t.Integer()),
  comment: t.Optional(t.String()),
  labels: t.Optional(t.Record(t.String(), t.String())),
  author: t.String({ description: "The principal (user id) who gave it." }),
  created_at: dateTime,
  expires_at: dateTime,
});
export type FeedbackItem = typeof feedbackItem.static;

export const listQuery = t.Object({
  subject_id: t.String({ minLength: 1, maxLength: 200, description: "the alert, incident or recommendation id" }),
  subject_type: t.Optional(
    oneOf(SUBJECT_TYPES, { description: "Only this type's subject; without it, every subject with this id." }),
  ),
  cursor: t.Optional(ulidCursor),
  limit: t.Optional(pageLimit),
});

export const feedbackList = t.Object({
  items: t.Array(feedbackItem),
  next_cursor: t.Union([t.String(), t.Null()]),
});

export const subjectSummary = t.Object({
  subject_type: oneOf(SUBJECT_TYPES),
  subject_id: t.String(),
  total: t.Integer(),
  by_verdict: t.Record(t.String(), t.Integer()),
  /** false_positive / total for that subject. */
  false_positive_rate: t.Number(),
});
export type SubjectSummary = typeof subjectSummary.static;

export const summaryQuery = t.Object({
  // A subject id of 200 control characters, escaped in the cursor's JSON, makes one of ~1 650.
  cursor: t.Optional(t.String({ minLength: 1, maxLength: 2048, description: "from next_cursor" })),
  limit: t.Optional(
    t.Integer({ minimum: 1, maximum: 1000, default: 100, description: "the most subjects a page holds" }),
  ),
});

export const summaryResponse = t.Object({
  total: t.Integer({ description: "the tenant's live feedback, every subject" }),
  by_verdict: t.Record(t.String(), t.Integer()),
  false_positive_rate: t.Number(),
  subjects: t.Array(subjectSummary, { description: "one page, the subject with the latest feedback first" }),
  next_cursor: t.Union([t.String(), t.Null()]),
});
export type Summary = typeof summaryResponse.static;
