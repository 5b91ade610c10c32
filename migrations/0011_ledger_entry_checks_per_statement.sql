ALTER TABLE "ledger_entries" DROP CONSTRAINT "ledger_entries_journal_id_journals_id_fk";
--> statement-breakpoint
ALTER TABLE "ledger_entries" DROP CONSTRAINT "ledger_entries_account_id_accounts_id_fk";
--> statement-breakpoint
-- What the two foreign keys checked row by row, checked once per insert statement with the balance: every
-- entry names an existing journal and an existing account of the entry's own asset.
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unbalanced record;
  orphan record;
BEGIN
  SELECT journal_id, asset, sum(amount) AS total INTO unbalanced
    FROM added GROUP BY journal_id, asset HAVING sum(amount) <> 0 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger journal % does not balance in %: entries sum to %',
      unbalanced.journal_id, unbalanced.asset, unbalanced.total;
  END IF;
  SELECT e.journal_id, e.account_id, e.asset INTO orphan
    FROM added e
    LEFT JOIN journals j ON j.id = e.journal_id
    LEFT JOIN accounts a ON a.id = e.account_id AND a.asset = e.asset
   WHERE j.id IS NULL OR a.id IS NULL LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger entry of journal % names account % of %: no such journal, or no such account of that asset',
      orphan.journal_id, orphan.account_id, orphan.asset;
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- Entries point at accounts without a foreign key now: an account, like the ledger, is never removed.
CREATE TRIGGER accounts_never_deleted BEFORE DELETE ON accounts
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
