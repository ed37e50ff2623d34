import { parseArgs } from "node:util";
import { openDatabase } from "../../../db/client";
import { ROLES, type Role } from "../../../db/schema";
import type { Config } from "../../config";
import { systemClock } from "../../lib/clock";
import { isEmailAddress } from "../../lib/formats";
import { AuditAction } from "../audit/actions";
import { AuditTrail } from "../audit/trail";
import { serverSecretsFor } from "../auth/server-secrets";
import { credentialsFor, IdentityService, TENANT_SLUG } from "./identity";

export const ADMIN_CREATE_USAGE =
  "warden admin create --tenant <slug> --email <email> [--role admin|developer|viewer] [--json]";

/** Thrown for bad command-line input: printed as one line with the usage, exit code 2. */
export class UsageError extends Error {}

/**
 * `admin create`: creates the tenant if needed, a user with a generated password, and an API key
 * for that user; prints the password and key once. Safe while a server runs on the same DATA_DIR.
 */
export async function adminCreate(argv: string[], config: Config): Promise<string> {
  const { values, tokens } = parseArgs({
    args: argv,
    options: {
      tenant: { type: "string" },
      email: { type: "string" },
      role: { type: "string", default: "admin" },
      json: { type: "boolean", default: false },
    },
    strict: true,
    tokens: true,
  });
  // parseArgs keeps the last of a repeated option: `--tenant a --tenant b` would create in b
  // what may have been meant for a.
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} is given twice; usage: ${ADMIN_CREATE_USAGE}`);
    seen.add(token.name);
  }
  const tenant = values.tenant ?? "";
  const email = (values.email ?? "").trim().toLowerCase();
  const role = values.role as Role;
  if (!TENANT_SLUG.test(tenant)) throw new UsageError("--tenant must be a slug of lowercase letters, digits and '-'");
  if (!isEmailAddress(email)) throw new UsageError("--email must be an email address");
  if (!ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(", ")}`);

  const db = openDatabase(config.dataDir);
  try {
    const secrets = await serverSecretsFor(config);
    const identity = new IdentityService(db, systemClock, secrets.apiKeyPepper);
    const audit = new AuditTrail(db, secrets.auditKey, systemClock);
    audit.assertKeyMatches();
    const actor = { type: "system" as const, id: "cli" };
    const credentials = await credentialsFor();
    const created = db.transaction(
      (tx) => {
        identity.ensureTenant(tx, tenant);
        const user = identity.createUser(tx, { tenantId: tenant, email, role, credentials });
        const key = identity.createApiKey(tx, {
          tenantId: tenant,
          userId: user.id,
          name: "created by admin create",
          role,
        });
        const common = { outcome: "success" as const, tenantId: tenant, actor };
        audit.append(tx, {
          ...common,
          action: AuditAction.userCreated,
          target: { type: "user", id: user.id },
          params: { email, role },
        });
        audit.append(tx, {
          ...common,
          action: AuditAction.apiKeyCreated,
          target: { type: "api_key", id: key.key.id },
          params: { name: key.key.name, role, user_id: user.id },
        });
        return { user, key };
      },
      { behavior: "immediate" },
    );
    const result = {
      tenant_id: tenant,
      user_id: created.user.id,
      email,
      role,
      password: credentials.password,
      api_key: created.key.secret,
    };
    if (values.json) return JSON.stringify(result);
    return [
      `created ${role} ${email} in tenant ${tenant} (user ${created.user.id})`,
      `password: ${result.password}`,
      `api key:  ${result.api_key}`,
      "Both are shown once; store them now.",
    ].join("\n");
  } finally {
    db.$client.close();
  }
}
