DROP INDEX `inbox_items_unread`;--> statement-breakpoint
CREATE INDEX `inbox_items_unread` ON `inbox_items` (`user_id`,`tenant_id`,`notification_id`) WHERE read_at IS NULL;