CREATE TABLE "accounts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" bigint,
	"system" text,
	"asset" text NOT NULL,
	"available" numeric DEFAULT '0' NOT NULL,
	"frozen" numeric DEFAULT '0' NOT NULL,
	CONSTRAINT "accounts_user_asset" UNIQUE("user_id","asset"),
	CONSTRAINT "accounts_system_asset" UNIQUE("system","asset"),
	CONSTRAINT "accounts_owner" CHECK (("accounts"."user_id" is null) <> ("accounts"."system" is null)),
	CONSTRAINT "accounts_system_name" CHECK ("accounts"."system" in ('custody', 'withdrawals_pending') or "accounts"."system" like 'fees:%'),
	CONSTRAINT "accounts_not_negative" CHECK ("accounts"."system" is not distinct from 'custody' or ("accounts"."available" >= 0 and "accounts"."frozen" >= 0))
);
--> statement-breakpoint
CREATE TABLE "assets" (
	"symbol" text PRIMARY KEY NOT NULL,
	"scale" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "assets_scale_range" CHECK ("assets"."scale" between 0 and 30)
);
--> statement-breakpoint
CREATE TABLE "journals" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"idempotency_key" text NOT NULL,
	"kind" text NOT NULL,
	"memo" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "journals_idempotency_key_unique" UNIQUE("idempotency_key")
);
--> statement-breakpoint
CREATE TABLE "ledger_entries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"journal_id" bigint NOT NULL,
	"account_id" bigint NOT NULL,
	"asset" text NOT NULL,
	"bucket" text NOT NULL,
	"amount" numeric NOT NULL,
	"reason" text NOT NULL,
	"ref_type" text NOT NULL,
	"ref_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ledger_entries_nonzero" CHECK ("ledger_entries"."amount" <> 0)
);
--> statement-breakpoint
CREATE TABLE "markets" (
	"symbol" text PRIMARY KEY NOT NULL,
	"base" text NOT NULL,
	"quote" text NOT NULL,
	"tick_size" numeric NOT NULL,
	"lot_size" numeric NOT NULL,
	"min_notional" numeric NOT NULL,
	"maker_fee" numeric NOT NULL,
	"taker_fee" numeric NOT NULL,
	"status" text DEFAULT 'trading' NOT NULL,
	"epoch" bigint DEFAULT 0 NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"last_order_id" bigint DEFAULT 0 NOT NULL,
	"last_trade_id" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "markets_base_ne_quote" CHECK ("markets"."base" <> "markets"."quote"),
	CONSTRAINT "markets_positive_rules" CHECK ("markets"."tick_size" > 0 and "markets"."lot_size" > 0 and "markets"."min_notional" >= 0),
	CONSTRAINT "markets_fee_range" CHECK ("markets"."maker_fee" between -0.01 and 0.1 and "markets"."taker_fee" between 0 and 0.1)
);
--> statement-breakpoint
CREATE TABLE "orders" (
	"market" text NOT NULL,
	"id" bigint NOT NULL,
	"user_id" bigint NOT NULL,
	"client_order_id" text NOT NULL,
	"side" text NOT NULL,
	"type" text NOT NULL,
	"time_in_force" text NOT NULL,
	"self_trade_prevention" text NOT NULL,
	"price" numeric,
	"quantity" numeric,
	"quote_quantity" numeric,
	"executed_quantity" numeric DEFAULT '0' NOT NULL,
	"cumulative_quote_quantity" numeric DEFAULT '0' NOT NULL,
	"frozen_remaining" numeric DEFAULT '0' NOT NULL,
	"status" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "orders_market_id_pk" PRIMARY KEY("market","id")
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"market" text NOT NULL,
	"seq" bigint NOT NULL,
	"topic" text NOT NULL,
	"payload" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone,
	CONSTRAINT "outbox_market_seq" UNIQUE("market","seq")
);
--> statement-breakpoint
CREATE TABLE "trades" (
	"market" text NOT NULL,
	"id" bigint NOT NULL,
	"taker_order_id" bigint NOT NULL,
	"maker_order_id" bigint NOT NULL,
	"buyer_user_id" bigint NOT NULL,
	"seller_user_id" bigint NOT NULL,
	"buyer_is_maker" boolean NOT NULL,
	"price" numeric NOT NULL,
	"quantity" numeric NOT NULL,
	"quote_quantity" numeric NOT NULL,
	"buyer_fee" numeric NOT NULL,
	"seller_fee" numeric NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "trades_market_id_pk" PRIMARY KEY("market","id")
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_name_unique" UNIQUE("name")
);
--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_asset_assets_symbol_fk" FOREIGN KEY ("asset") REFERENCES "public"."assets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_journal_id_journals_id_fk" FOREIGN KEY ("journal_id") REFERENCES "public"."journals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "markets" ADD CONSTRAINT "markets_base_assets_symbol_fk" FOREIGN KEY ("base") REFERENCES "public"."assets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "markets" ADD CONSTRAINT "markets_quote_assets_symbol_fk" FOREIGN KEY ("quote") REFERENCES "public"."assets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_market_markets_symbol_fk" FOREIGN KEY ("market") REFERENCES "public"."markets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "trades" ADD CONSTRAINT "trades_market_markets_symbol_fk" FOREIGN KEY ("market") REFERENCES "public"."markets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "ledger_entries_account" ON "ledger_entries" USING btree ("account_id","id");--> statement-breakpoint
CREATE INDEX "ledger_entries_journal" ON "ledger_entries" USING btree ("journal_id");--> statement-breakpoint
CREATE INDEX "ledger_entries_ref" ON "ledger_entries" USING btree ("ref_type","ref_id");--> statement-breakpoint
CREATE UNIQUE INDEX "orders_open_client_order_id" ON "orders" USING btree ("user_id","market","client_order_id") WHERE "orders"."status" in ('NEW', 'PARTIALLY_FILLED');--> statement-breakpoint
CREATE INDEX "orders_open" ON "orders" USING btree ("market","id") WHERE "orders"."status" in ('NEW', 'PARTIALLY_FILLED');--> statement-breakpoint
CREATE INDEX "orders_user" ON "orders" USING btree ("user_id","market","id");--> statement-breakpoint
CREATE INDEX "outbox_unsent" ON "outbox" USING btree ("id") WHERE "outbox"."sent_at" is null;--> statement-breakpoint
CREATE INDEX "trades_buyer" ON "trades" USING btree ("buyer_user_id","market","id");--> statement-breakpoint
CREATE INDEX "trades_seller" ON "trades" USING btree ("seller_user_id","market","id");