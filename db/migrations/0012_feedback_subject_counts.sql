CREATE TABLE `feedback_subject_counts` (
	`tenant_id` text NOT NULL,
	`subject_type` text NOT NULL,
	`subject_id` text NOT NULL,
	`held` integer NOT NULL,
	PRIMARY KEY(`tenant_id`, `subject_type`, `subject_id`)
);
--> statement-breakpoint
INSERT INTO `feedback_subject_counts` (`tenant_id`, `subject_type`, `subject_id`, `held`)
SELECT `tenant_id`, `subject_type`, `subject_id`, count(*) FROM `feedback_entries` GROUP BY 1, 2, 3;
