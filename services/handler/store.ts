/**
 * Where the handler commits a symbol's market data: all writes caused by a batch of trades (k-lines of every
 * interval, their indexes, the trade-id dedup set, the ticker, the recent trades) land together or not at all,
 * and only if nobody else wrote the symbol since we read it (a per-symbol revision, compare-and-set).
 *
 * The pub/sub adapter offers single commands only, so on a Redis Cluster this helper keeps its own ioredis
 * connection and commits with one Lua script: every key carries the symbol's hash tag, so the script runs on
 * one shard, atomically. In the embedded mode (one process, in-process store that dies with it) the adapter's
 * commands are applied one after the other, which is enough there.
 */
import { Cluster } from 'ioredis'
import { marketKey, type PubSubCache } from '../../adapters/pubsub/index.ts'

export type WriteOp =
  | { op: 'hset'; key: string; fields: Record<string, string> }
  /** LPUSH then keep the newest `maxLen` (the adapter's pushCapped). */
  | { op: 'push'; key: string; value: string; maxLen: number }
  | { op: 'expire'; key: string; ttlMs: number }

export interface MarketStore {
  /** The symbol's revision: 0 before its first commit, +1 with each. Read it before reading its state. */
  revision(symbol: string): Promise<number>
  /** Applies `ops` and bumps the revision if it is still `expected`; false (and nothing written) otherwise. */
  commit(symbol: string, expected: number, ops: readonly WriteOp[]): Promise<boolean>
  close(): Promise<void>
}

export const revisionKey = (symbol: string) => marketKey(symbol, 'rev')

/** Through the adapter's single commands: for the embedded mode, where one process owns the store. */
export function cacheMarketStore(cache: PubSubCache): MarketStore {
  const revision = async (symbol: string) => Number((await cache.get(revisionKey(symbol))) ?? '0')
  return {
    revision,
    async commit(symbol, expected, ops) {
      if ((await revision(symbol)) !== expected) return false
      for (const op of ops) {
        if (op.op === 'hset') await cache.hashSet(op.key, op.fields)
        else if (op.op === 'push') await cache.pushCapped(op.key, op.value, op.maxLen)
        // The adapter has no expiry for hashes; the in-process store lives as long as the process.
      }
      await cache.set(revisionKey(symbol), String(expected + 1))
      return true
    },
    async close() {},
  }
}

// KEYS[1] is the revision; ARGV[1] the expected revision, then the ops: H <key#> <n> <n field/value args>,
// P <key#> <value> <maxLen>, E <key#> <ttlMs>.
const COMMIT_SCRIPT = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
local i = 2
while i <= #ARGV do
  local op = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  if op == 'H' then
    local n = tonumber(ARGV[i + 2])
    redis.call('HSET', key, unpack(ARGV, i + 3, i + 2 + n))
    i = i + 3 + n
  elseif op == 'P' then
    redis.call('LPUSH', key, ARGV[i + 2])
    redis.call('LTRIM', key, 0, tonumber(ARGV[i + 3]) - 1)
    i = i + 4
  elseif op == 'E' then
    redis.call('PEXPIRE', key, ARGV[i + 2])
    i = i + 3
  else
    return redis.error_reply('unknown op ' .. tostring(op))
  end
end
redis.call('SET', KEYS[1], current + 1)
return 1
`

type CommitCommand = (numberOfKeys: number, ...keysThenArgs: string[]) => Promise<number>

/**
 * On a Redis Cluster: one Lua script per commit, on the symbol's shard (sent by EVALSHA, ioredis falls back to
 * EVAL when a node does not have it yet). A commit's arguments stay far below Lua's stack limit for the
 * batches the handler commits (at most 500 trades: one HSET of their ids is at most 1000 arguments).
 */
export function redisMarketStore(config: { nodes: string[] }): MarketStore {
  const cluster = new Cluster(config.nodes)
  cluster.defineCommand('bourseMarketCommit', { lua: COMMIT_SCRIPT })
  const commitScript = (cluster as unknown as { bourseMarketCommit: CommitCommand }).bourseMarketCommit.bind(
    cluster,
  )
  return {
    async revision(symbol) {
      return Number((await cluster.get(revisionKey(symbol))) ?? '0')
    },
    async commit(symbol, expected, ops) {
      const keys = [revisionKey(symbol)]
      const index = new Map<string, number>()
      const keyNumber = (key: string) => {
        let n = index.get(key)
        if (n === undefined) {
          keys.push(key)
          n = keys.length
          index.set(key, n)
        }
        return String(n)
      }
      const args: string[] = [String(expected)]
      for (const op of ops) {
        if (op.op === 'hset') {
          const fields = Object.entries(op.fields).flat()
          args.push('H', keyNumber(op.key), String(fields.length), ...fields)
        } else if (op.op === 'push') {
          args.push('P', keyNumber(op.key), op.value, String(op.maxLen))
        } else {
          args.push('E', keyNumber(op.key), String(Math.max(1, Math.round(op.ttlMs))))
        }
      }
      const result = await commitScript(keys.length, ...keys, ...args)
      return result === 1
    },
    async close() {
      await cluster.quit()
    },
  }
}
