import { t } from "elysia";
import { oneOf, ulidCursor } from "../auth/model";

export const SUBJECT_TYPES = ["alert", "incident", "recommendation"] as const;
export const VERDICTS = ["useful", "not_useful", "false_positive", "true_positive"] as const;
export type SubjectType = (typeof SUBJECT_TYPES)[number];
export type Verdict = (typeof VERDICTS)[number];

const MAX_LABELS = 20;

export const feedbackRequest = t.Object(
  {
    subject_type: oneOf(SUBJECT_TYPES, { description: "What the feedback is about." }),
    subject_id: t.String({ minLength: 1, maxLength: 200 }),
    verdict: oneOf(VERDICTS),
    rating: t.Optional(t.Integer({ minimum: 1, maximum: 5 })),
    comment: t.Optional(t.String({ maxLength: 2000 })),
    labels: t.Optional(
      t.Record(t.String({ minLength: 1, maxLength: 100 }), t.String({ maxLength: 200 }), {
        maxProperties: MAX_LABELS,
        description: `Up to ${MAX_LABELS} string pairs.`,
      }),
    ),
  },
  { additionalProperties: false },
);
export type FeedbackRequest = typeof feedbackRequest.static;

export const accepted = t.Object({
  id: t.String(),
  expires_at: t.String({ description: "ISO 8601; the entry and its indexes are gone after it." }),
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
  created_at: t.String(),
  expires_at: t.String(),
});
export type FeedbackItem = typeof feedbackItem.static;

export const listQuery = t.Object({
  subject_id: t.String({ minLength: 1, maxLength: 200 }),
  cursor: t.Optional(ulidCursor),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50 })),
});

export const feedbackList = t.Object({
  items: t.Array(feedbackItem),
  next_cursor: t.Union([t.String(), t.Null()]),
});

export const subjectSummary = t.Object({
  subject_id: t.String(),
  total: t.Integer(),
  by_verdict: t.Record(t.String(), t.Integer()),
  /** false_positive / total for that subject. */
  false_positive_rate: t.Number(),
});
export type SubjectSummary = typeof subjectSummary.static;

export const summaryResponse = t.Object({
  total: t.Integer(),
  by_verdict: t.Record(t.String(), t.Integer()),
  false_positive_rate: t.Number(),
  subjects: t.Array(subjectSummary),
});
export type Summary = typeof summaryResponse.static;
