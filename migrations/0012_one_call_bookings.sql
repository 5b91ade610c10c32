-- A booking, and a whole engine batch, each in one call: one round trip, one statement, its own transaction.
-- Reading the accounts, checking them and writing had taken the engine four round trips per batch, and under
-- load each one waited behind the gateway's HTTP work on the engine's event loop: that wait, not Postgres, was
-- most of a batch's commit.

-- A booking's movements, as the ledger sends them: a JSON array of
-- {userId | system, asset, bucket, amount, reason, refType, refId}, numbered from 1 in order.
CREATE FUNCTION ledger_movements(p_movements jsonb)
RETURNS TABLE (n int8, user_id int8, system text, asset text, bucket text, amount numeric, reason text,
               ref_type text, ref_id text)
LANGUAGE sql IMMUTABLE AS $$
  SELECT e.n, (e.m->>'userId')::int8, e.m->>'system', e.m->>'asset', e.m->>'bucket', (e.m->>'amount')::numeric,
         e.m->>'reason', e.m->>'refType', e.m->>'refId'
  FROM jsonb_array_elements(p_movements) WITH ORDINALITY AS e(m, n)
$$;
--> statement-breakpoint
-- Books the movements once per key: creates the accounts they name, locks them in ascending id order (the one
-- order every booking uses, so two bookings sharing accounts never deadlock), writes the journal and its entries
-- and applies the deltas. Answers {journalId, duplicate, balances: [{userId, asset, available, frozen}]}: the
-- users' balances after it, none for a key booked before. A user's balance that would go negative is refused
-- with SQLSTATE BRNSF naming the bucket and asset; what else may not go negative is accounts_not_negative's.
CREATE FUNCTION ledger_book(p_key text, p_kind text, p_memo text, p_movements jsonb) RETURNS jsonb
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

  INSERT INTO accounts (user_id, system, asset)
    SELECT DISTINCT m.user_id, m.system, m.asset FROM ledger_movements(p_movements) m
    ON CONFLICT DO NOTHING;
  -- Users' and system accounts are found apart, each on plain equalities its unique index serves.
  SELECT array_agg(coalesce(u.id, s.id) ORDER BY m.n) INTO v_accounts
    FROM ledger_movements(p_movements) m
    LEFT JOIN accounts u ON u.user_id = m.user_id AND u.asset = m.asset
    LEFT JOIN accounts s ON s.system = m.system AND s.asset = m.asset;
  PERFORM 1 FROM accounts WHERE id = ANY(v_accounts) ORDER BY id FOR UPDATE;

  INSERT INTO ledger_entries (journal_id, account_id, asset, bucket, amount, reason, ref_type, ref_id)
    SELECT v_journal, v_accounts[m.n], m.asset, m.bucket, m.amount, m.reason, m.ref_type, m.ref_id
    FROM ledger_movements(p_movements) m ORDER BY m.n;

  SELECT array_agg(d.id ORDER BY d.id), array_agg(d.available ORDER BY d.id), array_agg(d.frozen ORDER BY d.id)
    INTO v_ids, v_available, v_frozen
    FROM (SELECT v_accounts[m.n] AS id,
                 trim_scale(coalesce(sum(m.amount) FILTER (WHERE m.bucket = 'available'), 0)) AS available,
                 trim_scale(coalesce(sum(m.amount) FILTER (WHERE m.bucket = 'frozen'), 0)) AS frozen
          FROM ledger_movements(p_movements) m GROUP BY 1) d;
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
-- One engine batch (services/engine/store.ts writeBatch): the fence, the booking, the orders, the trades and the
-- outbox events, the users' balances after the booking last. Raises BRFEN when a newer engine has claimed the
-- market. Answers {lastSeq, balances}: the seq of the batch's last event, and the balances it reported.
CREATE FUNCTION engine_commit(p_batch jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_symbol text := p_batch->>'symbol';
  v_first_seq int8 := (p_batch->>'firstSeq')::int8;
  v_events jsonb := p_batch->'events';
  v_booked jsonb;
  v_last_seq int8;
BEGIN
  PERFORM 1 FROM markets WHERE symbol = v_symbol AND epoch = (p_batch->>'epoch')::int8 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'market %: epoch % was superseded by a newer engine', v_symbol, p_batch->>'epoch'
      USING ERRCODE = 'BRFEN';
  END IF;

  IF jsonb_array_length(p_batch->'movements') > 0 THEN
    v_booked := ledger_book('engine:' || v_symbol || ':' || v_first_seq, 'engine_batch', NULL, p_batch->'movements');
    SELECT v_events || coalesce(jsonb_agg(jsonb_build_object('topic', 'balances',
                                                             'payload', b.balance || jsonb_build_object('time', p_batch->'time'))
                                          ORDER BY b.n), '[]')
      INTO v_events FROM jsonb_array_elements(v_booked->'balances') WITH ORDINALITY AS b(balance, n);
  END IF;

  INSERT INTO orders (market, id, user_id, client_order_id, side, type, time_in_force, self_trade_prevention,
                      price, quantity, quote_quantity, executed_quantity, cumulative_quote_quantity,
                      frozen_remaining, status, created_at, updated_at)
    SELECT v_symbol, o.* FROM jsonb_to_recordset(p_batch->'orders') AS o(
      id int8, "userId" int8, "clientOrderId" text, side text, type text, "timeInForce" text,
      "selfTradePrevention" text, price numeric, quantity numeric, "quoteQuantity" numeric,
      "executedQuantity" numeric, "cumulativeQuoteQuantity" numeric, "frozenRemaining" numeric, status text,
      "createdAt" timestamptz, "updatedAt" timestamptz)
    ON CONFLICT (market, id) DO UPDATE SET executed_quantity = excluded.executed_quantity,
      cumulative_quote_quantity = excluded.cumulative_quote_quantity, frozen_remaining = excluded.frozen_remaining,
      status = excluded.status, updated_at = excluded.updated_at;

  INSERT INTO trades (market, id, taker_order_id, maker_order_id, buyer_user_id, seller_user_id, buyer_is_maker,
                      price, quantity, quote_quantity, buyer_fee, seller_fee, created_at)
    SELECT v_symbol, t.* FROM jsonb_to_recordset(p_batch->'trades') AS t(
      id int8, "takerOrderId" int8, "makerOrderId" int8, "buyerUserId" int8, "sellerUserId" int8,
      "buyerIsMaker" boolean, price numeric, quantity numeric, "quoteQuantity" numeric, "buyerFee" numeric,
      "sellerFee" numeric, "createdAt" timestamptz);

  PERFORM outbox_append(v_symbol, v_first_seq, v_events);
  v_last_seq := v_first_seq + jsonb_array_length(v_events) - 1;
  UPDATE markets SET last_seq = v_last_seq, last_order_id = (p_batch->>'lastOrderId')::int8,
                     last_trade_id = (p_batch->>'lastTradeId')::int8, status = p_batch->>'status'
    WHERE symbol = v_symbol;
  RETURN jsonb_build_object('lastSeq', v_last_seq::text, 'balances', coalesce(v_booked->'balances', '[]'));
END
$$;
