CREATE TABLE "api_keys" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" bigint NOT NULL,
	"api_key" text NOT NULL,
	"kind" text NOT NULL,
	"secret_encrypted" text,
	"public_key" text,
	"label" text DEFAULT '' NOT NULL,
	"can_read" boolean DEFAULT true NOT NULL,
	"can_trade" boolean DEFAULT false NOT NULL,
	"allowed_ips" text[] DEFAULT '{}'::text[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_api_key_unique" UNIQUE("api_key"),
	CONSTRAINT "api_keys_material" CHECK (("api_keys"."kind" = 'HMAC' and "api_keys"."secret_encrypted" is not null) or ("api_keys"."kind" = 'ED25519' and "api_keys"."public_key" is not null))
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "api_keys_user" ON "api_keys" USING btree ("user_id");