/**
 * Reading a block range the way the chain followers (the deposit syncer, the DEX order indexer) need it:
 * every block of [from, to], fetched with bounded concurrency, and proof that they form one chain — each
 * block's parent hash is the previous block's hash. A block that is gone, or a broken link, means the chain
 * moved under the read (a reorg or a rollback): the caller re-reads in its next pass.
 */
import type { Block, Chain, PublicClient, Transport } from 'viem'

/** Any public client, whichever chain it was created for. */
type Reader = PublicClient<Transport, Chain | undefined> | PublicClient<Transport, Chain>

/** The chain changed while a range was being read; not a failure, the next pass re-reads. */
export class ChainMoved extends Error {
  override name = 'ChainMoved'
}

/** Maps `items` through `fn` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return out
}

/** The block at `n`, or null when the chain has none there (a rollback lowered the head). */
export async function getBlockOrNull(
  client: Reader,
  n: bigint,
  includeTransactions = false,
): Promise<Block | null> {
  try {
    return await (client as PublicClient<Transport, Chain>).getBlock({ blockNumber: n, includeTransactions })
  } catch (err) {
    if ((err as Error).name === 'BlockNotFoundError') return null
    throw err
  }
}

/**
 * Blocks `from`..`to`, each sitting on the one before it. Throws ChainMoved when a block is missing or a
 * link is broken. The first block's parent is the caller's to check against what it stored.
 */
export async function fetchBlockRange(
  client: Reader,
  from: bigint,
  to: bigint,
  opts: { concurrency?: number; includeTransactions?: boolean } = {},
): Promise<Block[]> {
  const numbers: bigint[] = []
  for (let n = from; n <= to; n++) numbers.push(n)
  const blocks = await mapLimit(numbers, opts.concurrency ?? 8, (n) =>
    getBlockOrNull(client, n, opts.includeTransactions ?? false),
  )
  if (blocks.some((b) => b === null)) throw new ChainMoved('a block of the range is gone')
  const linked = blocks as Block[]
  for (let i = 1; i < linked.length; i++) {
    if (linked[i]!.parentHash !== linked[i - 1]!.hash)
      throw new ChainMoved(`block ${linked[i]!.number} moved`)
  }
  return linked
}

/**
 * Walks back from `from` (no further than `floor`, nor below block 0) to the newest block whose stored hash
 * the chain still holds: the fork point after a reorg. Stops at the first block with no stored hash.
 */
export async function findForkPoint(
  from: bigint,
  floor: bigint,
  storedHash: (n: bigint) => Promise<string | undefined>,
  chainHash: (n: bigint) => Promise<string | undefined>,
): Promise<{ number: bigint; hash: string } | undefined> {
  for (let n = from; n >= floor && n >= 0n; n--) {
    const stored = await storedHash(n)
    if (stored === undefined) return undefined
    if ((await chainHash(n)) === stored) return { number: n, hash: stored }
  }
  return undefined
}
