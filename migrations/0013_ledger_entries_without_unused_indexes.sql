DROP INDEX "ledger_entries_journal";--> statement-breakpoint
DROP INDEX "ledger_entries_ref";