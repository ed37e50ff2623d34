ALTER TABLE `feedback_subject_counts` ADD `useful` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `feedback_subject_counts` ADD `not_useful` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `feedback_subject_counts` ADD `false_positive` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `feedback_subject_counts` ADD `true_positive` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `feedback_subject_counts` ADD `last_expiry` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `feedback_subject_counts_latest` ON `feedback_subject_counts` (`tenant_id`,`last_expiry`,`subject_type`,`subject_id`);