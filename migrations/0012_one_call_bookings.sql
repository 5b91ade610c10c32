-- A booking, and a whole engine batch, each in one call: one round trip, one statement, its own transaction.
-- Reading the accounts, checking them and writing had taken the engine four round trips per batch, and under
-- load each one waited behind the gateway's HTTP work on the engine's event loop: that wait, not Postgres, was
-- most of a batch's commit. Rows come as one typed array per column (Postgres parses those at a fraction of
-- what the same rows cost it as jsonb); events as jsonb, which the outbox keeps.

-- The account of each (user or system, asset), in order; NULL for one that does not exist yet. Users' and system
-- accounts are found apart, each on plain equalities its unique index serves.
CREATE FUNCTION ledger_accounts(p_user_ids int8[], p_systems text[], p_assets text[]) RETURNS int8[]
LANGUAGE sql STABLE AS $$
  SELECT array_agg(coalesce(u.id, s.id) ORDER BY m.n)
    FROM unnest(p_user_ids, p_systems, p_assets) WITH ORDINALITY AS m(user_id, system, asset, n)
    LEFT JOIN accounts u ON u.user_id = m.user_id AND u.asset = m.asset
    LEFT JOIN accounts s ON s.system = m.system AND s.asset = m.asset
$$;
--> statement-breakpoint
-- Books movements once per key: creates the accounts they name, locks them in ascending id order (the one order
-- every booking uses, so two bookings sharing accounts never deadlock), writes the journal and its entries and
-- applies the deltas. The accounts are the n-th elements of the p_account_ arrays, each (user or system, asset)
-- once; a movement is the n-th element of the other arrays, p_accounts its account's place among them.
-- Answers {journalId, duplicate, balances: [{userId, asset, available, frozen}]}: the users' balances after it,
-- none for a key booked before. A user's balance that would go negative is refused with SQLSTATE BRNSF naming
-- the bucket and asset; what else may not go negative is accounts_not_negative's.
CREATE FUNCTION ledger_book(
  p_key text, p_kind text, p_memo text,
  p_account_user_ids int8[], p_account_systems text[], p_account_assets text[],
  p_accounts int4[], p_buckets text[], p_amounts numeric[], p_reasons text[], p_ref_types text[], p_ref_ids text[]
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_journal int8;
  v_accounts int8[];
  v_ids int8[];
  v_available numeric[];
  v_frozen numeric[];
  v_balances jsonb;
  v_short record;
BEGIN
  INSERT INTO journals (idempotency_key, kind, memo) VALUES (p_key, p_kind, p_memo)
    ON CONFLICT (idempotency_key) DO NOTHING RETURNING id INTO v_journal;
  IF v_journal IS NULL THEN
    SELECT j.id INTO v_journal FROM journals j WHERE j.idempotency_key = p_key;
    RETURN jsonb_build_object('journalId', v_journal::text, 'duplicate', true, 'balances', '[]'::jsonb);
  END IF;

  v_accounts := ledger_accounts(p_account_user_ids, p_account_systems, p_account_assets);
  IF array_position(v_accounts, NULL) IS NOT NULL THEN
    INSERT INTO accounts (user_id, system, asset)
      SELECT * FROM unnest(p_account_user_ids, p_account_systems, p_account_assets) ON CONFLICT DO NOTHING;
    v_accounts := ledger_accounts(p_account_user_ids, p_account_systems, p_account_assets);
  END IF;
  PERFORM 1 FROM accounts WHERE id = ANY(v_accounts) ORDER BY id FOR UPDATE;

  INSERT INTO ledger_entries (journal_id, account_id, asset, bucket, amount, reason, ref_type, ref_id)
    SELECT v_journal, v_accounts[m.account], p_account_assets[m.account], m.bucket, m.amount, m.reason, m.ref_type,
           m.ref_id
    FROM unnest(p_accounts, p_buckets, p_amounts, p_reasons, p_ref_types, p_ref_ids)
      AS m(account, bucket, amount, reason, ref_type, ref_id);

  SELECT array_agg(d.id ORDER BY d.id), array_agg(d.available ORDER BY d.id), array_agg(d.frozen ORDER BY d.id)
    INTO v_ids, v_available, v_frozen
    FROM (SELECT v_accounts[m.account] AS id,
                 trim_scale(coalesce(sum(m.amount) FILTER (WHERE m.bucket = 'available'), 0)) AS available,
                 trim_scale(coalesce(sum(m.amount) FILTER (WHERE m.bucket = 'frozen'), 0)) AS frozen
          FROM unnest(p_accounts, p_buckets, p_amounts) AS m(account, bucket, amount) GROUP BY 1) d;
  BEGIN
    WITH changed AS (
      UPDATE accounts a SET available = a.available + d.available, frozen = a.frozen + d.frozen
        FROM unnest(v_ids, v_available, v_frozen) AS d(id, available, frozen)
        WHERE a.id = d.id
        RETURNING a.id, a.user_id, a.asset, a.available, a.frozen)
    SELECT coalesce(jsonb_agg(jsonb_build_object('userId', c.user_id::text, 'asset', c.asset,
                                                 'available', trim_scale(c.available)::text,
                                                 'frozen', trim_scale(c.frozen)::text) ORDER BY c.id), '[]')
      INTO v_balances FROM changed c WHERE c.user_id IS NOT NULL;
  EXCEPTION WHEN check_violation THEN
    SELECT a.asset, CASE WHEN a.available + d.available < 0 THEN 'available' ELSE 'frozen' END AS bucket
      INTO v_short
      FROM accounts a JOIN unnest(v_ids, v_available, v_frozen) AS d(id, available, frozen) ON a.id = d.id
      WHERE a.user_id IS NOT NULL AND (a.available + d.available < 0 OR a.frozen + d.frozen < 0)
      ORDER BY a.id LIMIT 1;
    IF NOT FOUND THEN
      RAISE;
    END IF;
    RAISE EXCEPTION 'insufficient % % balance', v_short.bucket, v_short.asset USING ERRCODE = 'BRNSF';
  END;
  RETURN jsonb_build_object('journalId', v_journal::text, 'duplicate', false, 'balances', v_balances);
END
$$;
--> statement-breakpoint
-- Appends events to a stream's outbox, numbered p_first_seq, p_first_seq + 1, …: a JSON array of {topic, payload}.
CREATE FUNCTION outbox_append(p_stream text, p_first_seq int8, p_events jsonb) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO outbox (market, seq, topic, payload)
    SELECT p_stream, p_first_seq + e.n - 1, e.event->>'topic', e.event->'payload'
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(event, n)
$$;
--> statement-breakpoint
-- One engine batch (services/engine/store.ts writeBatch): the fence, the booking (m_: ledger_book's arrays, none
-- when the batch moved no funds), the orders (o_), the trades (t_) and the outbox events, the users' balances
-- after the booking last, each carrying p_time. Raises BRFEN when a newer engine has claimed the market.
-- Answers {lastSeq, balances}: the seq of the batch's last event, and the balances it reported.
CREATE FUNCTION engine_commit(
  p_symbol text, p_epoch int8, p_first_seq int8, p_last_order_id int8, p_last_trade_id int8, p_status text,
  p_time int8, p_events jsonb,
  m_account_user_ids int8[], m_account_systems text[], m_account_assets text[], m_accounts int4[],
  m_buckets text[], m_amounts numeric[], m_reasons text[], m_ref_types text[], m_ref_ids text[],
  o_ids int8[], o_user_ids int8[], o_client_order_ids text[], o_sides text[], o_types text[], o_time_in_force text[],
  o_self_trade_prevention text[], o_prices numeric[], o_quantities numeric[], o_quote_quantities numeric[],
  o_executed_quantities numeric[], o_cumulative_quote_quantities numeric[], o_frozen_remaining numeric[],
  o_statuses text[], o_created_at timestamptz[], o_updated_at timestamptz[],
  t_ids int8[], t_taker_order_ids int8[], t_maker_order_ids int8[], t_buyer_user_ids int8[], t_seller_user_ids int8[],
  t_buyer_is_maker boolean[], t_prices numeric[], t_quantities numeric[], t_quote_quantities numeric[],
  t_buyer_fees numeric[], t_seller_fees numeric[], t_created_at timestamptz[]
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_balances jsonb := '[]';
  v_balance_seq int8 := p_first_seq + jsonb_array_length(p_events);
  v_last_seq int8;
BEGIN
  PERFORM 1 FROM markets WHERE symbol = p_symbol AND epoch = p_epoch FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'market %: epoch % was superseded by a newer engine', p_symbol, p_epoch USING ERRCODE = 'BRFEN';
  END IF;

  IF cardinality(m_accounts) > 0 THEN
    v_balances := ledger_book('engine:' || p_symbol || ':' || p_first_seq, 'engine_batch', NULL, m_account_user_ids,
                              m_account_systems, m_account_assets, m_accounts, m_buckets, m_amounts, m_reasons,
                              m_ref_types, m_ref_ids)->'balances';
  END IF;

  INSERT INTO orders (market, id, user_id, client_order_id, side, type, time_in_force, self_trade_prevention,
                      price, quantity, quote_quantity, executed_quantity, cumulative_quote_quantity,
                      frozen_remaining, status, created_at, updated_at)
    SELECT p_symbol, o.* FROM unnest(o_ids, o_user_ids, o_client_order_ids, o_sides, o_types, o_time_in_force,
      o_self_trade_prevention, o_prices, o_quantities, o_quote_quantities, o_executed_quantities,
      o_cumulative_quote_quantities, o_frozen_remaining, o_statuses, o_created_at, o_updated_at) AS o
    ON CONFLICT (market, id) DO UPDATE SET executed_quantity = excluded.executed_quantity,
      cumulative_quote_quantity = excluded.cumulative_quote_quantity, frozen_remaining = excluded.frozen_remaining,
      status = excluded.status, updated_at = excluded.updated_at;

  INSERT INTO trades (market, id, taker_order_id, maker_order_id, buyer_user_id, seller_user_id, buyer_is_maker,
                      price, quantity, quote_quantity, buyer_fee, seller_fee, created_at)
    SELECT p_symbol, t.* FROM unnest(t_ids, t_taker_order_ids, t_maker_order_ids, t_buyer_user_ids,
      t_seller_user_ids, t_buyer_is_maker, t_prices, t_quantities, t_quote_quantities, t_buyer_fees, t_seller_fees,
      t_created_at) AS t;

  PERFORM outbox_append(p_symbol, p_first_seq, p_events);
  INSERT INTO outbox (market, seq, topic, payload)
    SELECT p_symbol, v_balance_seq + b.n - 1, 'balances', b.balance || jsonb_build_object('time', p_time)
    FROM jsonb_array_elements(v_balances) WITH ORDINALITY AS b(balance, n);
  v_last_seq := v_balance_seq + jsonb_array_length(v_balances) - 1;
  UPDATE markets SET last_seq = v_last_seq, last_order_id = p_last_order_id, last_trade_id = p_last_trade_id,
                     status = p_status
    WHERE symbol = p_symbol;
  RETURN jsonb_build_object('lastSeq', v_last_seq::text, 'balances', v_balances);
END
$$;
