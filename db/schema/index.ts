/**
 * The database schema, one file per module; drizzle-kit reads these files (drizzle.config.ts).
 * Times are integer milliseconds since the epoch unless a column says otherwise.
 */
export * from "./audit";
export * from "./feedback";
export * from "./health";
export * from "./identity";
export * from "./notifications";
export * from "./revocation";
export * from "./webhooks";
