CREATE TABLE "dex_blocks" (
	"indexer_id" text NOT NULL,
	"number" bigint NOT NULL,
	"hash" text NOT NULL,
	"parent_hash" text NOT NULL,
	CONSTRAINT "dex_blocks_indexer_id_number_pk" PRIMARY KEY("indexer_id","number")
);
--> statement-breakpoint
CREATE TABLE "dex_indexers" (
	"id" text PRIMARY KEY NOT NULL,
	"chain_id" bigint NOT NULL,
	"contract" text NOT NULL,
	"start_block" bigint NOT NULL,
	"scanned_block" bigint NOT NULL,
	"scanned_hash" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dex_indexers_chain_contract" UNIQUE("chain_id","contract")
);
--> statement-breakpoint
CREATE TABLE "dex_order_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"indexer_id" text NOT NULL,
	"chain_id" bigint NOT NULL,
	"tx_hash" text NOT NULL,
	"log_ordinal" integer NOT NULL,
	"log_index" integer NOT NULL,
	"block_number" bigint NOT NULL,
	"block_hash" text NOT NULL,
	"block_time" timestamp with time zone NOT NULL,
	"order_id" numeric(78, 0) NOT NULL,
	"event_type" text NOT NULL,
	"old_status" text,
	"new_status" text NOT NULL,
	"maker" text NOT NULL,
	"taker" text,
	"sell_token" text,
	"buy_token" text,
	"sell_decimals" integer,
	"buy_decimals" integer,
	"sell_amount" numeric(78, 0),
	"buy_amount" numeric(78, 0),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dex_order_events_chain_tx_ordinal" UNIQUE("chain_id","tx_hash","log_ordinal"),
	CONSTRAINT "dex_order_events_ordinal" CHECK ("dex_order_events"."log_ordinal" >= 0)
);
--> statement-breakpoint
CREATE TABLE "dex_orders" (
	"indexer_id" text NOT NULL,
	"order_id" numeric(78, 0) NOT NULL,
	"chain_id" bigint NOT NULL,
	"maker" text NOT NULL,
	"sell_token" text NOT NULL,
	"buy_token" text NOT NULL,
	"sell_decimals" integer,
	"buy_decimals" integer,
	"sell_amount" numeric(78, 0) NOT NULL,
	"buy_amount" numeric(78, 0) NOT NULL,
	"status" text NOT NULL,
	"taker" text,
	"created_tx" text NOT NULL,
	"created_block" bigint NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"closed_tx" text,
	"closed_block" bigint,
	"executed_at" timestamp with time zone,
	"cancelled_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dex_orders_indexer_id_order_id_pk" PRIMARY KEY("indexer_id","order_id")
);
--> statement-breakpoint
ALTER TABLE "dex_blocks" ADD CONSTRAINT "dex_blocks_indexer_id_dex_indexers_id_fk" FOREIGN KEY ("indexer_id") REFERENCES "public"."dex_indexers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dex_order_events" ADD CONSTRAINT "dex_order_events_indexer_id_dex_indexers_id_fk" FOREIGN KEY ("indexer_id") REFERENCES "public"."dex_indexers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dex_orders" ADD CONSTRAINT "dex_orders_indexer_id_dex_indexers_id_fk" FOREIGN KEY ("indexer_id") REFERENCES "public"."dex_indexers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "dex_order_events_order" ON "dex_order_events" USING btree ("indexer_id","order_id","block_number","log_index");--> statement-breakpoint
CREATE INDEX "dex_order_events_block" ON "dex_order_events" USING btree ("indexer_id","block_number");--> statement-breakpoint
CREATE INDEX "dex_orders_status" ON "dex_orders" USING btree ("indexer_id","status","order_id");--> statement-breakpoint
CREATE INDEX "dex_orders_maker" ON "dex_orders" USING btree ("indexer_id","maker","order_id");