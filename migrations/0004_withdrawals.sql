CREATE TABLE "chain_txs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"chain_id" bigint NOT NULL,
	"from_address" text NOT NULL,
	"nonce" bigint NOT NULL,
	"purpose" text NOT NULL,
	"ref_id" text NOT NULL,
	"to_address" text NOT NULL,
	"value" numeric NOT NULL,
	"data" text DEFAULT '0x' NOT NULL,
	"gas" bigint NOT NULL,
	"max_fee_per_gas" numeric NOT NULL,
	"max_priority_fee_per_gas" numeric NOT NULL,
	"raw_tx" text NOT NULL,
	"tx_hash" text NOT NULL,
	"previous_hashes" text[] DEFAULT '{}'::text[] NOT NULL,
	"state" text DEFAULT 'signed' NOT NULL,
	"mined_hash" text,
	"block_number" bigint,
	"broadcast_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "chain_txs_nonce" UNIQUE("chain_id","from_address","nonce"),
	CONSTRAINT "chain_txs_purpose" UNIQUE("purpose","ref_id")
);
--> statement-breakpoint
CREATE TABLE "signer_nonces" (
	"chain_id" bigint NOT NULL,
	"address" text NOT NULL,
	"next_nonce" bigint NOT NULL,
	CONSTRAINT "signer_nonces_chain_id_address_pk" PRIMARY KEY("chain_id","address"),
	CONSTRAINT "signer_nonces_nonce" CHECK ("signer_nonces"."next_nonce" >= 0)
);
--> statement-breakpoint
CREATE TABLE "sweeps" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"wallet_id" text NOT NULL,
	"chain_id" bigint NOT NULL,
	"asset" text NOT NULL,
	"contract" text,
	"address_index" integer NOT NULL,
	"from_address" text NOT NULL,
	"to_address" text NOT NULL,
	"units" numeric NOT NULL,
	"state" text NOT NULL,
	"gas_tx_id" bigint,
	"chain_tx_id" bigint,
	"fail_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "withdrawals" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" bigint NOT NULL,
	"client_id" text,
	"wallet_id" text NOT NULL,
	"chain_id" bigint NOT NULL,
	"asset" text NOT NULL,
	"contract" text,
	"decimals" integer NOT NULL,
	"to_address" text NOT NULL,
	"amount" numeric NOT NULL,
	"units" numeric NOT NULL,
	"state" text NOT NULL,
	"chain_tx_id" bigint,
	"tx_hash" text,
	"approved_by" text,
	"fail_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "withdrawals_client_id" UNIQUE("user_id","client_id"),
	CONSTRAINT "withdrawals_amount_positive" CHECK ("withdrawals"."amount" > 0)
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "can_withdraw" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "sweeps" ADD CONSTRAINT "sweeps_wallet_id_chain_wallets_id_fk" FOREIGN KEY ("wallet_id") REFERENCES "public"."chain_wallets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sweeps" ADD CONSTRAINT "sweeps_asset_assets_symbol_fk" FOREIGN KEY ("asset") REFERENCES "public"."assets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sweeps" ADD CONSTRAINT "sweeps_gas_tx_id_chain_txs_id_fk" FOREIGN KEY ("gas_tx_id") REFERENCES "public"."chain_txs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sweeps" ADD CONSTRAINT "sweeps_chain_tx_id_chain_txs_id_fk" FOREIGN KEY ("chain_tx_id") REFERENCES "public"."chain_txs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "withdrawals" ADD CONSTRAINT "withdrawals_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "withdrawals" ADD CONSTRAINT "withdrawals_wallet_id_chain_wallets_id_fk" FOREIGN KEY ("wallet_id") REFERENCES "public"."chain_wallets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "withdrawals" ADD CONSTRAINT "withdrawals_asset_assets_symbol_fk" FOREIGN KEY ("asset") REFERENCES "public"."assets"("symbol") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "withdrawals" ADD CONSTRAINT "withdrawals_chain_tx_id_chain_txs_id_fk" FOREIGN KEY ("chain_tx_id") REFERENCES "public"."chain_txs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "chain_txs_open" ON "chain_txs" USING btree ("chain_id","from_address") WHERE "chain_txs"."state" in ('signed', 'broadcast', 'mined');--> statement-breakpoint
CREATE INDEX "sweeps_open" ON "sweeps" USING btree ("wallet_id","id") WHERE "sweeps"."state" not in ('swept', 'failed');--> statement-breakpoint
CREATE UNIQUE INDEX "sweeps_one_open" ON "sweeps" USING btree ("wallet_id","from_address","asset") WHERE "sweeps"."state" not in ('swept', 'failed');--> statement-breakpoint
CREATE INDEX "withdrawals_user" ON "withdrawals" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "withdrawals_open" ON "withdrawals" USING btree ("wallet_id","id") WHERE "withdrawals"."state" in ('approved', 'processing');