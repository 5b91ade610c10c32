/**
 * The Postgres schema: money and orders. Amounts are NUMERIC (exact); code turns them into bigint
 * fixed-point through lib/money.ts and never into floats.
 *
 * The ledger is double-entry and append-only: a journal groups entries whose amounts sum to zero per
 * asset, and each entry moves one bucket (available or frozen) of one account. System accounts balance
 * the books: `custody` is the contra account of the outside world (a deposit moves money from custody
 * to the user; a completed withdrawal moves it back), so for every asset the sum over all other accounts
 * equals confirmed deposits minus completed withdrawals. Only custody may be negative.
 */
import { sql } from 'drizzle-orm'
import {
  bigint,
  bigserial,
  boolean,
  check,
  date,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
} from 'drizzle-orm/pg-core'

export type SystemAccount = 'custody' | 'withdrawals_pending' | 'network_fees' | `fees:${string}`

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow()

export const assets = pgTable(
  'assets',
  {
    symbol: text('symbol').primaryKey(),
    /** Decimal places the ledger keeps for this asset (e.g. 8 for BTC, 18 for ETH). */
    scale: integer('scale').notNull(),
    createdAt: createdAt(),
  },
  (t) => [check('assets_scale_range', sql`${t.scale} between 0 and 30`)],
)

export const markets = pgTable(
  'markets',
  {
    /** BASEQUOTE, as Binance spells symbols: BTCUSDT. */
    symbol: text('symbol').primaryKey(),
    base: text('base')
      .notNull()
      .references(() => assets.symbol),
    quote: text('quote')
      .notNull()
      .references(() => assets.symbol),
    tickSize: numeric('tick_size').notNull(),
    lotSize: numeric('lot_size').notNull(),
    minNotional: numeric('min_notional').notNull(),
    makerFee: numeric('maker_fee').notNull(),
    takerFee: numeric('taker_fee').notNull(),
    status: text('status', { enum: ['trading', 'halted'] })
      .notNull()
      .default('trading'),
    /** Fencing epoch: an engine commits only while the epoch it claimed is still the market's. */
    epoch: bigint('epoch', { mode: 'bigint' }).notNull().default(sql`0`),
    /** Per-market sequence of outbox events, and the last order and trade ids handed out. */
    lastSeq: bigint('last_seq', { mode: 'bigint' }).notNull().default(sql`0`),
    lastOrderId: bigint('last_order_id', { mode: 'bigint' }).notNull().default(sql`0`),
    lastTradeId: bigint('last_trade_id', { mode: 'bigint' }).notNull().default(sql`0`),
    createdAt: createdAt(),
  },
  (t) => [
    check('markets_base_ne_quote', sql`${t.base} <> ${t.quote}`),
    check('markets_positive_rules', sql`${t.tickSize} > 0 and ${t.lotSize} > 0 and ${t.minNotional} >= 0`),
    check('markets_fee_range', sql`${t.makerFee} between -0.01 and 0.1 and ${t.takerFee} between 0 and 0.1`),
  ],
)

export const users = pgTable('users', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  name: text('name').notNull().unique(),
  /** The `sub` of the user's identity at the configured OIDC issuer (native /v1 API sign-in by JWT). */
  oidcSubject: text('oidc_subject').unique(),
  createdAt: createdAt(),
})

export const accounts = pgTable(
  'accounts',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    userId: bigint('user_id', { mode: 'bigint' }).references(() => users.id),
    /**
     * Set for system accounts: `custody`, `withdrawals_pending`, `network_fees`, or `fees:<MARKET>` — fee
     * income is kept per market so that the engines of different markets never wait on one row.
     */
    system: text('system').$type<SystemAccount>(),
    asset: text('asset')
      .notNull()
      .references(() => assets.symbol),
    available: numeric('available').notNull().default('0'),
    frozen: numeric('frozen').notNull().default('0'),
  },
  (t) => [
    unique('accounts_user_asset').on(t.userId, t.asset),
    unique('accounts_system_asset').on(t.system, t.asset),
    check('accounts_owner', sql`(${t.userId} is null) <> (${t.system} is null)`),
    check(
      'accounts_system_name',
      sql`${t.system} in ('custody', 'withdrawals_pending', 'network_fees') or ${t.system} like 'fees:%'`,
    ),
    // The accounts whose balance may go below zero: `custody`, the contra account of everything held on chain,
    // and `network_fees`, the gas the exchange's own transactions burned (an expense: its balance is minus the
    // total spent). Every other account is something the exchange owes and can never be negative.
    check(
      'accounts_not_negative',
      sql`coalesce(${t.system} in ('custody', 'network_fees'), false) or (${t.available} >= 0 and ${t.frozen} >= 0)`,
    ),
  ],
)

/** A journal is one atomic booking: a deposit, an admin adjustment, or a whole engine batch. */
export const journals = pgTable('journals', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  /** Makes every ledger operation idempotent: the same key never books twice. */
  idempotencyKey: text('idempotency_key').notNull().unique(),
  kind: text('kind', {
    enum: ['deposit', 'engine_batch', 'withdrawal', 'adjustment', 'market_release', 'network_fee'],
  }).notNull(),
  memo: text('memo'),
  createdAt: createdAt(),
})

export const entryReasons = [
  'deposit',
  'freeze',
  'unfreeze',
  'trade',
  'fee',
  'withdrawal_start',
  'withdrawal_complete',
  'withdrawal_fail',
  'adjustment',
  'network_fee',
] as const

export const ledgerEntries = pgTable(
  'ledger_entries',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    /**
     * The journal and the account (of the entry's asset) must exist: checked once per insert statement by the
     * ledger_entries_balanced trigger (migrations 0011), not by foreign keys, whose row-by-row checks doubled
     * the cost of an engine batch's thousands of entries. Journals and accounts are never deleted.
     */
    journalId: bigint('journal_id', { mode: 'bigint' }).notNull(),
    accountId: bigint('account_id', { mode: 'bigint' }).notNull(),
    asset: text('asset').notNull(),
    bucket: text('bucket', { enum: ['available', 'frozen'] }).notNull(),
    /** Signed: positive adds to the bucket, negative takes from it. */
    amount: numeric('amount').notNull(),
    reason: text('reason', { enum: entryReasons }).notNull(),
    /** What caused it: an order (`BTCUSDT:42`), a trade, a deposit, a withdrawal, a chain transaction's gas. */
    refType: text('ref_type', {
      enum: ['order', 'trade', 'deposit', 'withdrawal', 'admin', 'chain_tx'],
    }).notNull(),
    refId: text('ref_id').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    /**
     * No index by journal or ref: no query reads entries that way, and every index costs every booking (an
     * engine batch writes thousands of entries). An audit by reference can query ClickHouse's ledger_history.
     */
    index('ledger_entries_account').on(t.accountId, t.id),
    /** The analytics syncer copies by created_at. */
    index('ledger_entries_created_at').on(t.createdAt),
    check('ledger_entries_nonzero', sql`${t.amount} <> 0`),
  ],
)

export const orders = pgTable(
  'orders',
  {
    /**
     * The market and the user must exist: checked once per insert statement by the orders_refs trigger
     * (migration 0014), not by foreign keys, whose row-by-row checks were about a seventh of Postgres's work
     * per order. Markets and users are never deleted, and an order's market and user never change.
     */
    market: text('market').notNull(),
    id: bigint('id', { mode: 'bigint' }).notNull(),
    userId: bigint('user_id', { mode: 'bigint' }).notNull(),
    clientOrderId: text('client_order_id').notNull(),
    side: text('side', { enum: ['BUY', 'SELL'] }).notNull(),
    type: text('type', { enum: ['LIMIT', 'MARKET', 'LIMIT_MAKER'] }).notNull(),
    timeInForce: text('time_in_force', { enum: ['GTC', 'IOC', 'FOK'] }).notNull(),
    selfTradePrevention: text('self_trade_prevention', {
      enum: ['NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'],
    }).notNull(),
    price: numeric('price'),
    quantity: numeric('quantity'),
    quoteQuantity: numeric('quote_quantity'),
    executedQuantity: numeric('executed_quantity').notNull().default('0'),
    cumulativeQuoteQuantity: numeric('cumulative_quote_quantity').notNull().default('0'),
    /** Funds still frozen for this order (quote for a buy, base for a sell). */
    frozenRemaining: numeric('frozen_remaining').notNull().default('0'),
    status: text('status', {
      enum: ['NEW', 'PARTIALLY_FILLED', 'FILLED', 'CANCELED', 'REJECTED', 'EXPIRED', 'EXPIRED_IN_MATCH'],
    }).notNull(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.market, t.id] }),
    /** Like Binance, a client order id is unique among a user's open orders and may be reused once closed. */
    uniqueIndex('orders_open_client_order_id')
      .on(t.userId, t.market, t.clientOrderId)
      .where(sql`${t.status} in ('NEW', 'PARTIALLY_FILLED')`),
    /** Ids are handed out in arrival order, so they are also the book's time priority on rebuild. */
    index('orders_open').on(t.market, t.id).where(sql`${t.status} in ('NEW', 'PARTIALLY_FILLED')`),
    index('orders_user').on(t.userId, t.market, t.id),
    /** The analytics syncer copies by updated_at; the archiver finds old closed orders by it. */
    index('orders_updated_at').on(t.updatedAt),
  ],
)

export const trades = pgTable(
  'trades',
  {
    /** Must exist: checked per insert statement by the trades_refs trigger, as orders' are (migration 0014). */
    market: text('market').notNull(),
    id: bigint('id', { mode: 'bigint' }).notNull(),
    takerOrderId: bigint('taker_order_id', { mode: 'bigint' }).notNull(),
    makerOrderId: bigint('maker_order_id', { mode: 'bigint' }).notNull(),
    buyerUserId: bigint('buyer_user_id', { mode: 'bigint' }).notNull(),
    sellerUserId: bigint('seller_user_id', { mode: 'bigint' }).notNull(),
    buyerIsMaker: boolean('buyer_is_maker').notNull(),
    price: numeric('price').notNull(),
    quantity: numeric('quantity').notNull(),
    quoteQuantity: numeric('quote_quantity').notNull(),
    buyerFee: numeric('buyer_fee').notNull(),
    sellerFee: numeric('seller_fee').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.market, t.id] }),
    index('trades_buyer').on(t.buyerUserId, t.market, t.id),
    index('trades_seller').on(t.sellerUserId, t.market, t.id),
    /** The analytics syncer copies by created_at. */
    index('trades_created_at').on(t.createdAt),
  ],
)

/**
 * The event streams other than markets' (which count in `markets.last_seq`): the next seq of each, allocated
 * under this row's lock in the transaction that writes the events, so they commit in seq order.
 */
export const outboxStreams = pgTable('outbox_streams', {
  stream: text('stream').primaryKey(),
  lastSeq: bigint('last_seq', { mode: 'bigint' }).notNull(),
})

/** Events committed with the batch that caused them; the relay publishes them to the bus in seq order. */
export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    market: text('market').notNull(),
    seq: bigint('seq', { mode: 'bigint' }).notNull(),
    topic: text('topic').notNull(),
    payload: jsonb('payload').notNull(),
    createdAt: createdAt(),
    sentAt: timestamp('sent_at', { withTimezone: true }),
  },
  (t) => [
    unique('outbox_market_seq').on(t.market, t.seq),
    index('outbox_unsent').on(t.id).where(sql`${t.sentAt} is null`),
  ],
)

/**
 * API keys for the Binance-compatible API. An HMAC key keeps its secret encrypted (AES-256-GCM under a key
 * from the gateway's config) because verifying a signature needs the secret itself; an Ed25519 key keeps
 * only the public key. `allowedIps` empty means any address.
 */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    userId: bigint('user_id', { mode: 'bigint' })
      .notNull()
      .references(() => users.id),
    /** What the client sends in X-MBX-APIKEY. */
    apiKey: text('api_key').notNull().unique(),
    kind: text('kind', { enum: ['HMAC', 'ED25519'] }).notNull(),
    /** HMAC only: base64 of iv ‖ tag ‖ ciphertext. */
    secretEncrypted: text('secret_encrypted'),
    /** Ed25519 only: the public key, PEM (SPKI). */
    publicKey: text('public_key'),
    label: text('label').notNull().default(''),
    canRead: boolean('can_read').notNull().default(true),
    canTrade: boolean('can_trade').notNull().default(false),
    /** May request withdrawals (Binance's 'Enable Withdrawals'); off unless granted. */
    canWithdraw: boolean('can_withdraw').notNull().default(false),
    allowedIps: text('allowed_ips').array().notNull().default(sql`'{}'::text[]`),
    createdAt: createdAt(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [
    index('api_keys_user').on(t.userId),
    check(
      'api_keys_material',
      sql`(${t.kind} = 'HMAC' and ${t.secretEncrypted} is not null) or (${t.kind} = 'ED25519' and ${t.publicKey} is not null)`,
    ),
  ],
)

/**
 * A Wallet's chain side as the syncer keeps it: the deposit xpub (watch-only), the confirmations it
 * credits after, and the scan cursor — the last block whose deposits are recorded, with its hash, so a
 * restart resumes exactly there and a reorg below it is noticed.
 */
export const chainWallets = pgTable(
  'chain_wallets',
  {
    /** The Wallet resource's name. */
    id: text('id').primaryKey(),
    chainId: bigint('chain_id', { mode: 'bigint' }).notNull(),
    xpub: text('xpub').notNull(),
    confirmations: integer('confirmations').notNull(),
    /** `depth`: credit after `confirmations` blocks; `finalized`: once the chain's finalized tag covers the block. */
    finality: text('finality', { enum: ['depth', 'finalized'] })
      .notNull()
      .default('depth'),
    /** Next deposit address index to hand out; only ever increases, so an index is never reused. */
    nextAddressIndex: integer('next_address_index').notNull().default(0),
    /** Last block scanned (-1: nothing yet; the scan starts at start_block). */
    scannedBlock: bigint('scanned_block', { mode: 'bigint' }).notNull(),
    scannedHash: text('scanned_hash'),
    createdAt: createdAt(),
  },
  (t) => [
    check('chain_wallets_confirmations', sql`${t.confirmations} >= 1`),
    check('chain_wallets_next_index', sql`${t.nextAddressIndex} between 0 and 2147483648`),
  ],
)

/** The assets a Wallet takes deposits of: the chain's native coin (no contract) or an ERC-20. */
export const chainWalletAssets = pgTable(
  'chain_wallet_assets',
  {
    walletId: text('wallet_id')
      .notNull()
      .references(() => chainWallets.id),
    asset: text('asset')
      .notNull()
      .references(() => assets.symbol),
    /** Checksummed ERC-20 address; null for the native coin. */
    contract: text('contract'),
    decimals: integer('decimals').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.walletId, t.asset] }),
    uniqueIndex('chain_wallet_assets_contract').on(t.walletId, t.contract),
    uniqueIndex('chain_wallet_assets_native').on(t.walletId).where(sql`${t.contract} is null`),
  ],
)

/** Per-user deposit addresses: child `address_index` of the Wallet's xpub, allocated once, never reused. */
export const depositAddresses = pgTable(
  'deposit_addresses',
  {
    walletId: text('wallet_id')
      .notNull()
      .references(() => chainWallets.id),
    addressIndex: integer('address_index').notNull(),
    userId: bigint('user_id', { mode: 'bigint' })
      .notNull()
      .references(() => users.id),
    /** Checksummed. */
    address: text('address').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.walletId, t.addressIndex] }),
    unique('deposit_addresses_address').on(t.walletId, t.address),
    unique('deposit_addresses_user').on(t.walletId, t.userId),
  ],
)

/**
 * The recent blocks the syncer scanned, with their parent hashes: a new block whose parent is not the
 * stored hash, or a stored block whose hash the chain no longer has, is a reorg. Pruned below the depth
 * a reorg can still reach.
 */
export const chainBlocks = pgTable(
  'chain_blocks',
  {
    walletId: text('wallet_id')
      .notNull()
      .references(() => chainWallets.id),
    number: bigint('number', { mode: 'bigint' }).notNull(),
    hash: text('hash').notNull(),
    parentHash: text('parent_hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.walletId, t.number] })],
)

export const depositStates = ['detected', 'confirming', 'credited', 'orphaned'] as const

/**
 * A transfer to a deposit address. Keyed by (chain, tx hash, the log's ordinal in its receipt; -1 for
 * the native value), which a reorg does not change (a log's block-level index does): a transfer that
 * a reorg orphans and the new chain re-includes is the same row, detected again, credited once.
 */
export const deposits = pgTable(
  'deposits',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    walletId: text('wallet_id')
      .notNull()
      .references(() => chainWallets.id),
    chainId: bigint('chain_id', { mode: 'bigint' }).notNull(),
    txHash: text('tx_hash').notNull(),
    logOrdinal: integer('log_ordinal').notNull(),
    asset: text('asset')
      .notNull()
      .references(() => assets.symbol),
    userId: bigint('user_id', { mode: 'bigint' })
      .notNull()
      .references(() => users.id),
    address: text('address').notNull(),
    fromAddress: text('from_address').notNull(),
    /** The transferred amount in the asset's units (token decimals), exact. */
    amount: numeric('amount').notNull(),
    blockNumber: bigint('block_number', { mode: 'bigint' }).notNull(),
    blockHash: text('block_hash').notNull(),
    /** The log's index in its block, for explorers; not part of the identity. */
    logIndex: integer('log_index'),
    state: text('state', { enum: depositStates }).notNull().default('detected'),
    /** What the ledger booked (the amount at the ledger's scale), once credited. */
    creditedAmount: numeric('credited_amount'),
    detectedAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    creditedAt: timestamp('credited_at', { withTimezone: true }),
  },
  (t) => [
    unique('deposits_chain_tx_ordinal').on(t.chainId, t.txHash, t.logOrdinal),
    index('deposits_pending')
      .on(t.walletId, t.blockNumber)
      .where(sql`${t.state} in ('detected', 'confirming')`),
    index('deposits_user').on(t.userId, t.id),
    check('deposits_ordinal', sql`${t.logOrdinal} >= -1`),
    check('deposits_amount_positive', sql`${t.amount} > 0`),
  ],
)

/**
 * Outgoing chain transactions (withdrawals, sweeps, gas top-ups), one row per nonce of a sending address.
 * The row, with its signed raw transaction, is committed before anything is broadcast, so a restart
 * re-broadcasts the stored bytes and never signs a second transaction for the same purpose. A stuck
 * transaction is replaced in place (same nonce, bumped fees); the hashes it replaced stay in
 * `previous_hashes` because any of them may be the one that gets mined.
 */
export const chainTxStates = ['signed', 'broadcast', 'mined', 'confirmed', 'reverted'] as const

export const chainTxs = pgTable(
  'chain_txs',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    chainId: bigint('chain_id', { mode: 'bigint' }).notNull(),
    /** Checksummed sending address. */
    fromAddress: text('from_address').notNull(),
    nonce: bigint('nonce', { mode: 'bigint' }).notNull(),
    /** What the transaction is for, and that thing's id: unique, so one purpose never gets two nonces. */
    purpose: text('purpose', { enum: ['withdrawal', 'sweep', 'gas_topup'] }).notNull(),
    refId: text('ref_id').notNull(),
    toAddress: text('to_address').notNull(),
    /** Native value in wei. */
    value: numeric('value').notNull(),
    data: text('data').notNull().default('0x'),
    gas: bigint('gas', { mode: 'bigint' }).notNull(),
    maxFeePerGas: numeric('max_fee_per_gas').notNull(),
    maxPriorityFeePerGas: numeric('max_priority_fee_per_gas').notNull(),
    rawTx: text('raw_tx').notNull(),
    txHash: text('tx_hash').notNull(),
    previousHashes: text('previous_hashes').array().notNull().default(sql`'{}'::text[]`),
    state: text('state', { enum: chainTxStates }).notNull().default('signed'),
    /** The hash that was mined (the current one or a replaced one) and where. */
    minedHash: text('mined_hash'),
    blockNumber: bigint('block_number', { mode: 'bigint' }),
    broadcastAt: timestamp('broadcast_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique('chain_txs_nonce').on(t.chainId, t.fromAddress, t.nonce),
    unique('chain_txs_purpose').on(t.purpose, t.refId),
    index('chain_txs_open')
      .on(t.chainId, t.fromAddress)
      .where(sql`${t.state} in ('signed', 'broadcast', 'mined')`),
  ],
)

/** The next nonce of each sending address, handed out under a row lock (one signer per address). */
export const signerNonces = pgTable(
  'signer_nonces',
  {
    chainId: bigint('chain_id', { mode: 'bigint' }).notNull(),
    address: text('address').notNull(),
    nextNonce: bigint('next_nonce', { mode: 'bigint' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.chainId, t.address] }),
    check('signer_nonces_nonce', sql`${t.nextNonce} >= 0`),
  ],
)

export const withdrawalStates = [
  'pending_approval',
  'approved',
  'processing',
  'completed',
  'failed',
  'rejected',
] as const

/**
 * A withdrawal request. Its amount leaves the user's balance (ledger startWithdrawal) when it is accepted;
 * `approved` ones get a chain transaction (`chain_tx_id`), and its outcome completes or fails it in the ledger.
 */
export const withdrawals = pgTable(
  'withdrawals',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    userId: bigint('user_id', { mode: 'bigint' })
      .notNull()
      .references(() => users.id),
    /** The client's id for the request (Binance withdrawOrderId): a retried request returns the first. */
    clientId: text('client_id'),
    walletId: text('wallet_id')
      .notNull()
      .references(() => chainWallets.id),
    chainId: bigint('chain_id', { mode: 'bigint' }).notNull(),
    asset: text('asset')
      .notNull()
      .references(() => assets.symbol),
    /** ERC-20 contract, null for the native coin. */
    contract: text('contract'),
    decimals: integer('decimals').notNull(),
    /** Checksummed destination. */
    toAddress: text('to_address').notNull(),
    /** The ledger amount (decimal) and the same in the asset's smallest units. */
    amount: numeric('amount').notNull(),
    units: numeric('units').notNull(),
    state: text('state', { enum: withdrawalStates }).notNull(),
    chainTxId: bigint('chain_tx_id', { mode: 'bigint' }).references(() => chainTxs.id),
    txHash: text('tx_hash'),
    approvedBy: text('approved_by'),
    failReason: text('fail_reason'),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique('withdrawals_client_id').on(t.userId, t.clientId),
    index('withdrawals_user').on(t.userId, t.createdAt),
    index('withdrawals_open').on(t.walletId, t.id).where(sql`${t.state} in ('approved', 'processing')`),
    check('withdrawals_amount_positive', sql`${t.amount} > 0`),
  ],
)

export const sweepStates = [
  'gas_required',
  'waiting_for_gas',
  'ready',
  'sweeping',
  'swept',
  'failed',
] as const

/**
 * A sweep of one deposit address's balance of one asset to the cold address: the native coin directly;
 * an ERC-20 after the gas keeper's top-up (`gas_tx_id`) has confirmed.
 */
export const sweeps = pgTable(
  'sweeps',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    walletId: text('wallet_id')
      .notNull()
      .references(() => chainWallets.id),
    chainId: bigint('chain_id', { mode: 'bigint' }).notNull(),
    asset: text('asset')
      .notNull()
      .references(() => assets.symbol),
    contract: text('contract'),
    addressIndex: integer('address_index').notNull(),
    fromAddress: text('from_address').notNull(),
    toAddress: text('to_address').notNull(),
    /** What the sweep moves, in the asset's smallest units (native: balance less the gas it pays). */
    units: numeric('units').notNull(),
    state: text('state', { enum: sweepStates }).notNull(),
    gasTxId: bigint('gas_tx_id', { mode: 'bigint' }).references(() => chainTxs.id),
    chainTxId: bigint('chain_tx_id', { mode: 'bigint' }).references(() => chainTxs.id),
    failReason: text('fail_reason'),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('sweeps_open').on(t.walletId, t.id).where(sql`${t.state} not in ('swept', 'failed')`),
    uniqueIndex('sweeps_one_open')
      .on(t.walletId, t.fromAddress, t.asset)
      .where(sql`${t.state} not in ('swept', 'failed')`),
  ],
)

/**
 * One leader per cron job group: the holder renews `expires_at` (database time) while it runs; when it
 * stops renewing, another instance takes the row over once it has expired and `token` goes up. The token
 * fences a deposed leader: work that must not be done twice checks it is still the row's.
 */
export const cronLeases = pgTable('cron_leases', {
  name: text('name').primaryKey(),
  holder: text('holder').notNull(),
  token: bigint('token', { mode: 'bigint' }).notNull(),
  acquiredAt: timestamp('acquired_at', { withTimezone: true }).notNull().defaultNow(),
  renewedAt: timestamp('renewed_at', { withTimezone: true }).notNull().defaultNow(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
})

export const cronOutcomes = ['running', 'ok', 'failed'] as const

/** Every run of a cron job by the leader, with its outcome and duration. */
export const cronRuns = pgTable(
  'cron_runs',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    job: text('job').notNull(),
    holder: text('holder').notNull(),
    /** The lease token the run started under. */
    token: bigint('token', { mode: 'bigint' }).notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    outcome: text('outcome', { enum: cronOutcomes }).notNull().default('running'),
    error: text('error'),
    durationMs: integer('duration_ms'),
    /** What the job reports about its run (rows deleted, sweeps opened, …). */
    result: jsonb('result'),
  },
  (t) => [index('cron_runs_job').on(t.job, t.startedAt)],
)

/**
 * Proof of reserves, per asset: the ledger's liabilities (every account but custody) against the chain
 * balances of the exchange's addresses (deposit, hot, cold, gas keeper) at one block per wallet. Amounts
 * are decimals in the asset's units; `difference` = on_chain − liabilities (negative: a deficit).
 */
export const reconciliations = pgTable(
  'reconciliations',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    asset: text('asset')
      .notNull()
      .references(() => assets.symbol),
    /** Per wallet id, the block the balances were read at. */
    blocks: jsonb('blocks').notNull(),
    liabilities: numeric('liabilities').notNull(),
    /** Withdrawals still pending in the ledger whose transaction is already mined at the block. */
    inFlight: numeric('in_flight').notNull().default('0'),
    onChain: numeric('on_chain').notNull(),
    difference: numeric('difference').notNull(),
    status: text('status', { enum: ['ok', 'surplus', 'deficit'] }).notNull(),
    /** On-chain balance per address kind (deposit, hot, cold, gas_keeper). */
    breakdown: jsonb('breakdown').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('reconciliations_asset').on(t.asset, t.id)],
)

/**
 * Withdrawals paused, per scope: `*` for all, or a wallet id. A row with `resumed_at` null is a pause in
 * force: the withdrawal processor signs nothing new. Reconciliation pauses on a deficit; an admin resumes.
 */
export const withdrawalPauses = pgTable('withdrawal_pauses', {
  scope: text('scope').primaryKey(),
  reason: text('reason').notNull(),
  pausedBy: text('paused_by').notNull(),
  pausedAt: timestamp('paused_at', { withTimezone: true }).notNull().defaultNow(),
  resumedBy: text('resumed_by'),
  resumedAt: timestamp('resumed_at', { withTimezone: true }),
})

/** Trades and volume per market per UTC day, from the trades table (the cron's daily statistics). */
export const dailyStats = pgTable(
  'daily_stats',
  {
    day: date('day', { mode: 'string' }).notNull(),
    market: text('market')
      .notNull()
      .references(() => markets.symbol),
    trades: bigint('trades', { mode: 'bigint' }).notNull(),
    /** Base quantity and quote quantity traded. */
    volume: numeric('volume').notNull(),
    quoteVolume: numeric('quote_volume').notNull(),
    fees: numeric('fees').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.day, t.market] })],
)

/**
 * The analytics syncer's watermark per copied table (`orders`, `trades`, `ledger_entries`): every row whose
 * time column (orders: updated_at; trades and ledger entries: created_at) is at or below `watermark` has been
 * copied to ClickHouse. The next pass re-reads from `watermark` less an overlap, so a transaction that
 * committed late with an older timestamp (and a lower id) is still picked up; the copies are idempotent.
 */
export const analyticsWatermarks = pgTable('analytics_watermarks', {
  name: text('name').primaryKey(),
  watermark: timestamp('watermark', { withTimezone: true, precision: 6 }).notNull(),
  /** Rows copied in total (re-copies of the overlap included). */
  rowsCopied: bigint('rows_copied', { mode: 'bigint' }).notNull().default(sql`0`),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
})

/**
 * A DEX order contract (chain/contracts/OrderBook.sol, the Linkora order system) followed by the order
 * indexer, with its scan cursor: the last block whose events are recorded, and that block's hash.
 */
export const dexIndexers = pgTable(
  'dex_indexers',
  {
    id: text('id').primaryKey(),
    chainId: bigint('chain_id', { mode: 'bigint' }).notNull(),
    /** The order contract, checksummed. */
    contract: text('contract').notNull(),
    /** The first block scanned (the contract's deployment block, or later: earlier orders stay unknown). */
    startBlock: bigint('start_block', { mode: 'bigint' }).notNull(),
    /** Last block scanned (start_block - 1 before the first pass). */
    scannedBlock: bigint('scanned_block', { mode: 'bigint' }).notNull(),
    scannedHash: text('scanned_hash'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    createdAt: createdAt(),
  },
  (t) => [unique('dex_indexers_chain_contract').on(t.chainId, t.contract)],
)

/** The recent blocks the order indexer scanned, for finding the fork point of a reorg; pruned below its depth. */
export const dexBlocks = pgTable(
  'dex_blocks',
  {
    indexerId: text('indexer_id')
      .notNull()
      .references(() => dexIndexers.id),
    number: bigint('number', { mode: 'bigint' }).notNull(),
    hash: text('hash').notNull(),
    parentHash: text('parent_hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.indexerId, t.number] })],
)

export const dexOrderStatuses = ['pending', 'executed', 'cancelled'] as const
export const dexEventTypes = ['OrderCreated', 'OrderExecuted', 'OrderCancelled'] as const

/**
 * The order contract's events, one row per log, keyed by (chain, tx hash, the log's ordinal in its receipt),
 * which a reorg does not change (the block-level log index does). Rows of blocks a reorg removed are deleted;
 * a re-included transaction comes back under the same key. Amounts in the tokens' smallest units, exact.
 */
export const dexOrderEvents = pgTable(
  'dex_order_events',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    indexerId: text('indexer_id')
      .notNull()
      .references(() => dexIndexers.id),
    chainId: bigint('chain_id', { mode: 'bigint' }).notNull(),
    txHash: text('tx_hash').notNull(),
    logOrdinal: integer('log_ordinal').notNull(),
    /** The log's index in its block: ordering and explorers, not identity. */
    logIndex: integer('log_index').notNull(),
    blockNumber: bigint('block_number', { mode: 'bigint' }).notNull(),
    blockHash: text('block_hash').notNull(),
    blockTime: timestamp('block_time', { withTimezone: true }).notNull(),
    /** The contract's uint256 order id. */
    orderId: numeric('order_id', { precision: 78, scale: 0 }).notNull(),
    eventType: text('event_type', { enum: dexEventTypes }).notNull(),
    oldStatus: text('old_status', { enum: dexOrderStatuses }),
    newStatus: text('new_status', { enum: dexOrderStatuses }).notNull(),
    maker: text('maker').notNull(),
    /** OrderExecuted: who filled it. */
    taker: text('taker'),
    /** OrderCreated: the tokens and their decimals (null when the token does not say). */
    sellToken: text('sell_token'),
    buyToken: text('buy_token'),
    sellDecimals: integer('sell_decimals'),
    buyDecimals: integer('buy_decimals'),
    /** OrderCreated and OrderExecuted. */
    sellAmount: numeric('sell_amount', { precision: 78, scale: 0 }),
    buyAmount: numeric('buy_amount', { precision: 78, scale: 0 }),
    createdAt: createdAt(),
  },
  (t) => [
    unique('dex_order_events_chain_tx_ordinal').on(t.chainId, t.txHash, t.logOrdinal),
    index('dex_order_events_order').on(t.indexerId, t.orderId, t.blockNumber, t.logIndex),
    index('dex_order_events_block').on(t.indexerId, t.blockNumber),
    check('dex_order_events_ordinal', sql`${t.logOrdinal} >= 0`),
  ],
)

/**
 * The orders, as their events say: rebuilt from dex_order_events for every order a range or a reorg
 * touches, so re-processing a range changes nothing and a removed OrderExecuted reopens the order.
 */
export const dexOrders = pgTable(
  'dex_orders',
  {
    indexerId: text('indexer_id')
      .notNull()
      .references(() => dexIndexers.id),
    orderId: numeric('order_id', { precision: 78, scale: 0 }).notNull(),
    chainId: bigint('chain_id', { mode: 'bigint' }).notNull(),
    maker: text('maker').notNull(),
    sellToken: text('sell_token').notNull(),
    buyToken: text('buy_token').notNull(),
    sellDecimals: integer('sell_decimals'),
    buyDecimals: integer('buy_decimals'),
    sellAmount: numeric('sell_amount', { precision: 78, scale: 0 }).notNull(),
    buyAmount: numeric('buy_amount', { precision: 78, scale: 0 }).notNull(),
    status: text('status', { enum: dexOrderStatuses }).notNull(),
    taker: text('taker'),
    createdTx: text('created_tx').notNull(),
    createdBlock: bigint('created_block', { mode: 'bigint' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    /** The OrderExecuted or OrderCancelled that closed it. */
    closedTx: text('closed_tx'),
    closedBlock: bigint('closed_block', { mode: 'bigint' }),
    executedAt: timestamp('executed_at', { withTimezone: true }),
    cancelledAt: timestamp('cancelled_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.indexerId, t.orderId] }),
    index('dex_orders_status').on(t.indexerId, t.status, t.orderId),
    index('dex_orders_maker').on(t.indexerId, t.maker, t.orderId),
  ],
)
