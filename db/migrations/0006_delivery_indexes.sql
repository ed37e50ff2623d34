DROP INDEX `webhook_deliveries_tenant`;--> statement-breakpoint
DROP INDEX `webhook_deliveries_endpoint`;