CREATE TABLE `feedback_tenant_counts` (
	`tenant_id` text PRIMARY KEY NOT NULL,
	`useful` integer DEFAULT 0 NOT NULL,
	`not_useful` integer DEFAULT 0 NOT NULL,
	`false_positive` integer DEFAULT 0 NOT NULL,
	`true_positive` integer DEFAULT 0 NOT NULL
);
