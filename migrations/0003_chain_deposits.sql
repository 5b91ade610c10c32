CREATE TABLE "chain_blocks" (
	"wallet_id" text NOT NULL,
	"number" bigint NOT NULL,
	"hash" text NOT NULL,
	"parent_hash" text NOT NULL,
	CONSTRAINT "chain_blocks_wallet_id_number_pk" PRIMARY KEY("wallet_id","number")
);
--> statement-breakpoint
CREATE TABLE "chain_wallet_assets" (
	"wallet_id" text NOT NULL,
	"asset" text NOT NULL,
	"contract" text,
	"decimals" integer NOT NULL,
	CONSTRAINT "chain_wallet_assets_wallet_id_asset_pk" PRIMARY KEY("wallet_id","asset")
);
--> statement-breakpoint
CREATE TABLE "chain_wallets" (
	"id" text PRIMARY KEY NOT NULL,
	"chain_id" bigint NOT NULL,
	"xpub" text NOT NULL,
	"confirmations" integer NOT NULL,
	"finality" text DEFAULT 'depth' NOT NULL,
	"next_address_index" integer DEFAULT 0 NOT NULL,
	"scanned_block" bigint NOT NULL,
	"scanned_hash" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "chain_wallets_confirmations" CHECK ("chain_wallets"."confirmations" >= 1),
	CONSTRAINT "chain_wallets_next_index" CHECK ("chain_wallets"."next_address_index" between 0 and 2147483648)
);
--> statement-breakpoint
CREATE TABLE "deposit_addresses" (
	"wallet_id" text NOT NULL,
	"address_index" integer NOT NULL,
	"user_id" bigint NOT NULL,
	"address" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "deposit_addresses_wallet_id_address_index_pk" PRIMARY KEY("wallet_id","address_index"),
	CONSTRAINT "deposit_addresses_address" UNIQUE("wallet_id","address"),
	CONSTRAINT "deposit_addresses_user" UNIQUE("wallet_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "deposits" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"wallet_id" text NOT NULL,
	"chain_id" bigint NOT NULL,
	"tx_hash" text NOT NULL,
	"log_ordinal" integer NOT NULL,
	"asset" text NOT NULL,
	"user_id" bigint NOT NULL,
	"address" text NOT NULL,
	"from_address" text NOT NULL,
	"amount" numeric NOT NULL,
	"block_number" bigint NOT NULL,
	"block_hash" text NOT NULL,
	"log_index" integer,
	"state" text DEFAULT 'detected' NOT NULL,
	"credited_amount" numeric,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"credited_at" timestamp with time zone,
	CONSTRAINT "deposits_chain_tx_ordinal" UNIQUE("chain_id","tx_hash","log_ordinal"),
	CONSTRAINT "deposits_ordinal" CHECK ("deposits"."log_ordinal" >= -1),
	CONSTRAINT "deposits_amount_positive" CHECK ("deposits"."amount" > 0)
);
--> statement-breakpoint
ALTER TABLE "chain_blocks" ADD CONSTRAINT "chain_blocks_wallet_id_chain_wallets_id_fk" FOREIGN KEY ("wallet_id") REFERENCES "public"."chain_wallets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chain_wallet_assets" ADD CONSTRAINT "chain_wallet_assets_wallet_id_chain_wallets_id_fk" FOREIGN KEY ("wallet_id") REFERENCES "public"."chain_wallets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chain_wallet_assets" ADD CONSTRAINT "chain_wallet_assets_asset_assets_symbol_fk" FOREIGN KEY ("asset") REFERENCES "public"."assets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deposit_addresses" ADD CONSTRAINT "deposit_addresses_wallet_id_chain_wallets_id_fk" FOREIGN KEY ("wallet_id") REFERENCES "public"."chain_wallets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deposit_addresses" ADD CONSTRAINT "deposit_addresses_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deposits" ADD CONSTRAINT "deposits_wallet_id_chain_wallets_id_fk" FOREIGN KEY ("wallet_id") REFERENCES "public"."chain_wallets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deposits" ADD CONSTRAINT "deposits_asset_assets_symbol_fk" FOREIGN KEY ("asset") REFERENCES "public"."assets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deposits" ADD CONSTRAINT "deposits_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "chain_wallet_assets_contract" ON "chain_wallet_assets" USING btree ("wallet_id","contract");--> statement-breakpoint
CREATE UNIQUE INDEX "chain_wallet_assets_native" ON "chain_wallet_assets" USING btree ("wallet_id") WHERE "chain_wallet_assets"."contract" is null;--> statement-breakpoint
CREATE INDEX "deposits_pending" ON "deposits" USING btree ("wallet_id","block_number") WHERE "deposits"."state" in ('detected', 'confirming');--> statement-breakpoint
CREATE INDEX "deposits_user" ON "deposits" USING btree ("user_id","id");