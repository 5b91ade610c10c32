CREATE TABLE "cron_leases" (
	"name" text PRIMARY KEY NOT NULL,
	"holder" text NOT NULL,
	"token" bigint NOT NULL,
	"acquired_at" timestamp with time zone DEFAULT now() NOT NULL,
	"renewed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "cron_runs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job" text NOT NULL,
	"holder" text NOT NULL,
	"token" bigint NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"outcome" text DEFAULT 'running' NOT NULL,
	"error" text,
	"duration_ms" integer,
	"result" jsonb
);
--> statement-breakpoint
CREATE TABLE "daily_stats" (
	"day" date NOT NULL,
	"market" text NOT NULL,
	"trades" bigint NOT NULL,
	"volume" numeric NOT NULL,
	"quote_volume" numeric NOT NULL,
	"fees" numeric NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "daily_stats_day_market_pk" PRIMARY KEY("day","market")
);
--> statement-breakpoint
CREATE TABLE "reconciliations" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"asset" text NOT NULL,
	"blocks" jsonb NOT NULL,
	"liabilities" numeric NOT NULL,
	"in_flight" numeric DEFAULT '0' NOT NULL,
	"on_chain" numeric NOT NULL,
	"difference" numeric NOT NULL,
	"status" text NOT NULL,
	"breakdown" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "withdrawal_pauses" (
	"scope" text PRIMARY KEY NOT NULL,
	"reason" text NOT NULL,
	"paused_by" text NOT NULL,
	"paused_at" timestamp with time zone DEFAULT now() NOT NULL,
	"resumed_by" text,
	"resumed_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "daily_stats" ADD CONSTRAINT "daily_stats_market_markets_symbol_fk" FOREIGN KEY ("market") REFERENCES "public"."markets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reconciliations" ADD CONSTRAINT "reconciliations_asset_assets_symbol_fk" FOREIGN KEY ("asset") REFERENCES "public"."assets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "cron_runs_job" ON "cron_runs" USING btree ("job","started_at");--> statement-breakpoint
CREATE INDEX "reconciliations_asset" ON "reconciliations" USING btree ("asset","id");