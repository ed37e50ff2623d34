import { Elysia } from "elysia";
import { ANY_ROLE, authPlugin } from "../../plugins/auth";
import { leanPost } from "../../plugins/lean-routes";
import { JSON_OR_FORM } from "../../plugins/request-guards";
import type { Security } from "../auth/setup";
import {
  accepted,
  type FeedbackRequest,
  feedbackList,
  feedbackRequest,
  listQuery,
  summaryQuery,
  summaryResponse,
} from "./model";
import type { FeedbackService } from "./service";

/** POST /v1/feedback, GET /v1/feedback?subject_id=, GET /v1/feedback/summary — always the caller's tenant. */
export const feedbackModule = (deps: { security: Security; feedback: FeedbackService }) => {
  // Served by the lean path in front of Elysia (src/plugins/lean-routes.ts).
  const accept = leanPost(ANY_ROLE, 202, (principal, body: FeedbackRequest) => deps.feedback.accept(principal, body));
  return new Elysia({ name: "feedback-routes", tags: ["feedback"] })
    .use(authPlugin(deps.security.tokens, deps.security.audit))
    .post("/v1/feedback", accept.handler, {
      auth: accept.roles,
      body: feedbackRequest,
      parse: JSON_OR_FORM,
      response: { 202: accepted },
      detail: {
        summary: "Give feedback on an alert, incident or recommendation",
        description:
          "202 with the entry's id and when it expires (FEEDBACK_TTL_SECONDS). Accepted even while Redis is down: it is kept in SQLite and moved to Redis, with the same expiry, when Redis returns. 409 `subject-full` when the subject already holds FEEDBACK_MAX_PER_SUBJECT live entries (10 000 by default).",
      },
    })
    .get(
      "/v1/feedback",
      ({ principal, query }) =>
        deps.feedback.list(
          principal.tid,
          { subjectType: query.subject_type, subjectId: query.subject_id },
          query.cursor,
          query.limit ?? 50,
        ),
      {
        auth: ANY_ROLE,
        query: listQuery,
        response: feedbackList,
        detail: {
          summary: "Feedback on one subject, newest first",
          description:
            "A subject is its type and id: alert 42 and incident 42 are two. Without `subject_type`, the feedback on every subject with this id. Cursor-paginated: pass `next_cursor` as `cursor`. 503 while the configured Redis is down.",
        },
      },
    )
    .get(
      "/v1/feedback/summary",
      ({ principal, query }) => deps.feedback.summary(principal.tid, query.cursor, query.limit ?? 100),
      {
        auth: ANY_ROLE,
        query: summaryQuery,
        response: summaryResponse,
        detail: {
          summary: "Counts by verdict and the false-positive rate, per subject and overall",
          description:
            "Over the tenant's live (unexpired) feedback. The totals cover every subject; `subjects` is one page (a subject is its type and id), the subject with the latest feedback first: pass `next_cursor` as `cursor`. 503 while the configured Redis is down.",
        },
      },
    );
};
