CREATE TABLE `feedback_entries` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`subject_type` text NOT NULL,
	`subject_id` text NOT NULL,
	`verdict` text NOT NULL,
	`body` text NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `feedback_entries_subject` ON `feedback_entries` (`tenant_id`,`subject_id`,`id`);--> statement-breakpoint
CREATE INDEX `feedback_entries_expiry` ON `feedback_entries` (`expires_at`);--> statement-breakpoint
CREATE TABLE `feedback_spool` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`tenant_id` text NOT NULL,
	`id` text NOT NULL,
	`body` text NOT NULL,
	`expires_at` integer NOT NULL
);
