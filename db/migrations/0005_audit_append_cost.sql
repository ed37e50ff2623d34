PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_audit_events` (
	`seq` integer PRIMARY KEY NOT NULL,
	`id` text NOT NULL,
	`ts` integer NOT NULL,
	`tenant_id` text,
	`actor_type` text NOT NULL,
	`actor_id` text,
	`action` text NOT NULL,
	`target_type` text,
	`target_id` text,
	`outcome` text NOT NULL,
	`reason` text,
	`ip` text,
	`user_agent` text,
	`request_id` text,
	`params_hash` text NOT NULL,
	`params` text NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_audit_events`("seq", "id", "ts", "tenant_id", "actor_type", "actor_id", "action", "target_type", "target_id", "outcome", "reason", "ip", "user_agent", "request_id", "params_hash", "params", "prev_hash", "hash") SELECT "seq", "id", "ts", "tenant_id", "actor_type", "actor_id", "action", "target_type", "target_id", "outcome", "reason", "ip", "user_agent", "request_id", "params_hash", "params", "prev_hash", "hash" FROM `audit_events`;--> statement-breakpoint
DROP TABLE `audit_events`;--> statement-breakpoint
ALTER TABLE `__new_audit_events` RENAME TO `audit_events`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `audit_events_tenant_seq` ON `audit_events` (`tenant_id`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_tenant_action` ON `audit_events` (`tenant_id`,`action`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_tenant_actor` ON `audit_events` (`tenant_id`,`actor_id`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_tenant_target` ON `audit_events` (`tenant_id`,`target_id`,`seq`);--> statement-breakpoint
DELETE FROM `sqlite_sequence` WHERE `name` = 'audit_events';--> statement-breakpoint
CREATE TRIGGER `audit_events_no_update` BEFORE UPDATE ON `audit_events`
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
--> statement-breakpoint
CREATE TRIGGER `audit_events_no_delete` BEFORE DELETE ON `audit_events`
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
