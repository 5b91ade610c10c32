CREATE TABLE "analytics_watermarks" (
	"name" text PRIMARY KEY NOT NULL,
	"watermark" timestamp (6) with time zone NOT NULL,
	"rows_copied" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "ledger_entries_created_at" ON "ledger_entries" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "orders_updated_at" ON "orders" USING btree ("updated_at");--> statement-breakpoint
CREATE INDEX "trades_created_at" ON "trades" USING btree ("created_at");