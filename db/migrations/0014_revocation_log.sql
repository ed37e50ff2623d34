CREATE TABLE `revocation_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`body` text NOT NULL,
	`at` integer NOT NULL
);
