ALTER TABLE "accounts" DROP CONSTRAINT "accounts_system_name";--> statement-breakpoint
ALTER TABLE "accounts" DROP CONSTRAINT "accounts_not_negative";--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_system_name" CHECK ("accounts"."system" in ('custody', 'withdrawals_pending', 'network_fees') or "accounts"."system" like 'fees:%');--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_not_negative" CHECK (coalesce("accounts"."system" in ('custody', 'network_fees'), false) or ("accounts"."available" >= 0 and "accounts"."frozen" >= 0));