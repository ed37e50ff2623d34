CREATE TABLE `audit_checkpoints` (
	`seq` integer PRIMARY KEY NOT NULL,
	`hash` text NOT NULL,
	`archived_at` integer NOT NULL,
	`archive_file` text NOT NULL,
	`events` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `audit_events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
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
CREATE INDEX `audit_events_tenant_seq` ON `audit_events` (`tenant_id`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_tenant_action` ON `audit_events` (`tenant_id`,`action`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_tenant_actor` ON `audit_events` (`tenant_id`,`actor_id`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_tenant_target` ON `audit_events` (`tenant_id`,`target_id`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_tenant_ts` ON `audit_events` (`tenant_id`,`ts`);--> statement-breakpoint
CREATE TRIGGER `audit_events_no_update` BEFORE UPDATE ON `audit_events`
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
--> statement-breakpoint
CREATE TRIGGER `audit_events_no_delete` BEFORE DELETE ON `audit_events`
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
