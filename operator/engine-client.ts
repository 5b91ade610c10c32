/**
 * The operator's view of a market's engine, over the engine's internal HTTP API (services/engine/api.ts)
 * at its Service: GET /status for the status (optional: unreachable on kwok, where pods run no
 * containers), and, before a Market is removed, POST /halt then DELETE /open-orders for every user with
 * open orders in the market, which cancels them through the engine and so releases their frozen funds in
 * the same committed batches as any cancel. The users come from Postgres (orders of the market still
 * open), since the engine's API has no list of them.
 */
import type { EngineStatus, Market } from './market.ts'
import { ENGINE_PORT, engineName, symbolOf } from './market.ts'

export interface EngineClient {
  status(m: Market): Promise<EngineStatus | undefined>
  /** Halts (false) or resumes (true) matching. */
  setTrading(m: Market, trading: boolean): Promise<void>
  /** Halts the market and cancels every open order; resolves once none are left. */
  haltAndRelease(m: Market): Promise<{ cancelledUsers: number }>
}

export interface HttpEngineClientOptions {
  /** Base URL of a market's engine; default its Service's cluster DNS name. */
  baseUrl?: (m: Market) => string
  /** Users with open orders in the market (from Postgres). */
  openOrderUsers: (m: Market) => Promise<bigint[]>
  timeoutMs?: number
}

export const serviceUrl = (m: Market) => `http://${engineName(m)}.${m.metadata!.namespace}.svc:${ENGINE_PORT}`

export function httpEngineClient(o: HttpEngineClientOptions): EngineClient {
  const base = o.baseUrl ?? serviceUrl
  const timeout = o.timeoutMs ?? 2000
  async function call(m: Market, method: string, path: string): Promise<unknown> {
    const res = await fetch(`${base(m)}${path}`, { method, signal: AbortSignal.timeout(timeout) })
    const body = await res.text()
    if (!res.ok) throw new Error(`engine ${method} ${path}: HTTP ${res.status} ${body.slice(0, 200)}`)
    return body ? JSON.parse(body) : undefined
  }
  return {
    async status(m) {
      try {
        return (await call(m, 'GET', '/status')) as EngineStatus
      } catch {
        return undefined
      }
    },
    async setTrading(m, trading) {
      await call(m, 'POST', trading ? '/resume' : '/halt')
    },
    async haltAndRelease(m) {
      const before = (await call(m, 'GET', '/status')) as EngineStatus
      if (before.status !== 'halted') await call(m, 'POST', '/halt')
      const users = await o.openOrderUsers(m)
      for (const user of users) await call(m, 'DELETE', `/open-orders?userId=${user}`)
      const after = (await call(m, 'GET', '/status')) as EngineStatus
      if (after.openOrders !== 0)
        throw new Error(`market ${symbolOf(m)} still has ${after.openOrders} open orders after cancelling`)
      return { cancelledUsers: users.length }
    },
  }
}

/** Users with open orders in the market, read from Postgres with the URL of the Exchange's Secret. */
export function postgresOpenOrderUsers(databaseUrl: (m: Market) => Promise<string>) {
  return async (m: Market): Promise<bigint[]> => {
    const { default: postgres } = await import('postgres')
    const sql = postgres(await databaseUrl(m), { max: 1 })
    try {
      const rows = await sql<{ user_id: string }[]>`
        select distinct user_id::text as user_id from orders
        where market = ${symbolOf(m)} and status in ('NEW', 'PARTIALLY_FILLED')`
      return rows.map((r) => BigInt(r.user_id))
    } finally {
      await sql.end()
    }
  }
}
