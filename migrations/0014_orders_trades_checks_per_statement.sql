ALTER TABLE "orders" DROP CONSTRAINT "orders_market_markets_symbol_fk";
--> statement-breakpoint
ALTER TABLE "orders" DROP CONSTRAINT "orders_user_id_users_id_fk";
--> statement-breakpoint
ALTER TABLE "trades" DROP CONSTRAINT "trades_market_markets_symbol_fk";
--> statement-breakpoint
-- What the foreign keys checked row by row, checked once per insert statement: every order names an existing
-- market and user, every trade an existing market. The triggers below keep what the keys also guaranteed.
CREATE FUNCTION orders_check_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  orphan record;
BEGIN
  SELECT o.market, o.id, o.user_id INTO orphan
    FROM added o
    LEFT JOIN markets m ON m.symbol = o.market
    LEFT JOIN users u ON u.id = o.user_id
   WHERE m.symbol IS NULL OR u.id IS NULL LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'order % of market % names user %: no such market, or no such user',
      orphan.id, orphan.market, orphan.user_id USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER orders_refs AFTER INSERT ON orders REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION orders_check_refs();
--> statement-breakpoint
CREATE FUNCTION trades_check_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  orphan record;
BEGIN
  SELECT t.market, t.id INTO orphan
    FROM added t LEFT JOIN markets m ON m.symbol = t.market
   WHERE m.symbol IS NULL LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'trade % names market %: no such market', orphan.id, orphan.market
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER trades_refs AFTER INSERT ON trades REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION trades_check_refs();
--> statement-breakpoint
-- Fires only for statements that name these columns: the engine's updates of markets and orders never do.
CREATE FUNCTION refuse_orphaning() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on % refused: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0] USING ERRCODE = 'foreign_key_violation';
END
$$;
--> statement-breakpoint
CREATE TRIGGER markets_kept BEFORE DELETE OR UPDATE OF symbol ON markets
  FOR EACH ROW EXECUTE FUNCTION refuse_orphaning('orders and trades name markets');
--> statement-breakpoint
CREATE TRIGGER users_kept BEFORE DELETE OR UPDATE OF id ON users
  FOR EACH ROW EXECUTE FUNCTION refuse_orphaning('orders name users');
--> statement-breakpoint
CREATE TRIGGER orders_refs_fixed BEFORE UPDATE OF market, user_id ON orders
  FOR EACH ROW EXECUTE FUNCTION refuse_orphaning('an order''s market and user never change');
--> statement-breakpoint
CREATE TRIGGER trades_market_fixed BEFORE UPDATE OF market ON trades
  FOR EACH ROW EXECUTE FUNCTION refuse_orphaning('a trade''s market never changes');
