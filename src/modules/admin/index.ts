import { Elysia, t } from "elysia";
import { pageOf } from "../../lib/paging";
import { invalidField } from "../../lib/problem";
import { ADMIN, authPlugin } from "../../plugins/auth";
import { requestMetaOf } from "../../plugins/request-context";
import { JSON_OR_FORM } from "../../plugins/request-guards";
import { sessionList, sessionPage } from "../auth/model";
import { publicSession } from "../auth/public";
import type { Security } from "../auth/setup";
import { publicApiKey, publicUser } from "./identity";
import {
  apiKey,
  apiKeyQuery,
  createApiKeyRequest,
  createdApiKey,
  createdUser,
  createUserRequest,
  idParams,
  page,
  user,
  userList,
} from "./model";
import type { AdminService } from "./service";

/** Admin routes for users, API keys and sessions; admin role, own tenant only. */
export const adminModule = (deps: { security: Security; admin: AdminService }) => {
  const { admin } = deps;
  return new Elysia({ name: "admin-routes", tags: ["admin"] })
    .use(authPlugin(deps.security.tokens, deps.security.audit))
    .post(
      "/v1/admin/users",
      async ({ principal, body, request, server, set }) => {
        const created = await admin.createUser(principal, body, requestMetaOf(request, set, server));
        set.status = 201;
        return { user: publicUser(created.user), ...(created.password ? { password: created.password } : {}) };
      },
      {
        auth: ADMIN,
        body: createUserRequest,
        parse: JSON_OR_FORM,
        response: { 201: createdUser },
        detail: { summary: "Create a user" },
      },
    )
    .get(
      "/v1/admin/users",
      ({ principal, query }) => {
        const limit = query.limit ?? 50;
        const rows = deps.security.identity.listUsers(principal.tid, { limit: limit + 1, before: query.cursor });
        const { page, next_cursor } = pageOf(rows, limit);
        return { users: page.map(publicUser), next_cursor };
      },
      { auth: ADMIN, query: page, response: userList, detail: { summary: "List users, newest first" } },
    )
    .post(
      "/v1/admin/users/:id/disable",
      async ({ principal, params, request, server, set }) =>
        publicUser(await admin.setUserDisabled(principal, params.id, true, requestMetaOf(request, set, server))),
      {
        auth: ADMIN,
        params: idParams,
        response: user,
        detail: { summary: "Disable a user", description: "Also revokes every token and session the user holds." },
      },
    )
    .post(
      "/v1/admin/users/:id/enable",
      async ({ principal, params, request, server, set }) =>
        publicUser(await admin.setUserDisabled(principal, params.id, false, requestMetaOf(request, set, server))),
      { auth: ADMIN, params: idParams, response: user, detail: { summary: "Enable a user" } },
    )
    .post(
      "/v1/admin/api-keys",
      ({ principal, body, request, server, set }) => {
        const created = admin.createApiKey(
          principal,
          { name: body.name, role: body.role, userId: body.user_id },
          requestMetaOf(request, set, server),
        );
        set.status = 201;
        return { api_key: created.secret, key: publicApiKey(created.key) };
      },
      {
        auth: ADMIN,
        body: createApiKeyRequest,
        parse: JSON_OR_FORM,
        response: { 201: createdApiKey },
        detail: { summary: "Create an API key", description: "The key is returned once; only a keyed hash is stored." },
      },
    )
    .get(
      "/v1/admin/api-keys",
      ({ principal, query }) => {
        const limit = query.limit ?? 50;
        const rows = deps.security.identity.listApiKeys(principal.tid, {
          limit: limit + 1,
          after: query.cursor,
          userId: query.user_id,
        });
        if (!rows)
          throw invalidField("cursor", "not a cursor this API returned (pass next_cursor as it came)", "query");
        const { page, next_cursor } = pageOf(rows, limit);
        return { api_keys: page.map(publicApiKey), next_cursor };
      },
      {
        auth: ADMIN,
        query: apiKeyQuery,
        response: t.Object({ api_keys: t.Array(apiKey), next_cursor: t.Nullable(t.String()) }),
        detail: { summary: "List API keys, newest first", description: "Revoked keys too (with `revoked_at`)." },
      },
    )
    .delete(
      "/v1/admin/api-keys/:id",
      async ({ principal, params, request, server, set }) => {
        await admin.revokeApiKey(principal, params.id, requestMetaOf(request, set, server));
        set.status = 204;
      },
      {
        auth: ADMIN,
        params: idParams,
        detail: {
          summary: "Revoke an API key and the sessions opened with it",
          responses: { 204: { description: "The key and its sessions are revoked" } },
        },
      },
    )
    .get(
      "/v1/admin/sessions",
      ({ principal, query }) => {
        // An id no user of this tenant has lists nothing, as every filter does.
        const limit = query.limit ?? 50;
        const rows = deps.security.sessions.liveSessions(principal.tid, query.user_id, {
          limit: limit + 1,
          before: query.cursor,
        });
        const { page, next_cursor } = pageOf(rows, limit);
        return { sessions: page.map((s) => publicSession(s, principal.sid)), next_cursor };
      },
      {
        auth: ADMIN,
        query: t.Composite([
          t.Object({ user_id: t.String({ maxLength: 64, description: "the user whose sessions to list" }) }),
          sessionPage,
        ]),
        response: sessionList,
        detail: { summary: "A user's live sessions" },
      },
    );
};
