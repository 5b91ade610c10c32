/**
 * One EngineClient, two transports: the same calls and the same errors whether the engine's API is served
 * in process or over a real socket (the global fetch, as in a deployment).
 */
import { getRequestListener } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSilentServer } from '../../adapters/testing/silent-server.ts'
import { BourseError } from '../../lib/errors.ts'
import { type HttpServer, startHttpServer } from '../../lib/metrics.ts'
import { freePort } from '../../lib/net.ts'
import { engineApi } from '../engine/api.ts'
import { type MarketFixture, marketFixture } from '../engine/testing.ts'
import { EngineClient } from './engine-client.ts'

let fx: MarketFixture
let http: HttpServer
let clients: [string, EngineClient][]
let trader: bigint

beforeAll(async () => {
  fx = await marketFixture('pglite')
  const engine = await fx.engine()
  trader = await fx.trader('carol', { USDT: '1000', BTC: '1' })
  http = await startHttpServer({ port: 0, app: getRequestListener(engineApi(engine).fetch) })
  clients = [
    ['in-process', EngineClient.inProcess(engine)],
    ['remote', EngineClient.remote('BTCUSDT', http.url)],
  ]
})

afterAll(async () => {
  await http?.close()
  await fx?.close()
})

describe.each([0, 1])('EngineClient transport %i', (i) => {
  it('places, reads, cancels and maps errors back to BourseError', async () => {
    const [, client] = clients[i]!
    const placed = await client.place({
      userId: trader,
      side: 'BUY',
      type: 'LIMIT',
      timeInForce: 'GTC',
      price: '10',
      quantity: '1',
      clientOrderId: `t-${i}`,
    })
    expect(placed.order).toMatchObject({ status: 'NEW', clientOrderId: `t-${i}`, price: '10.00' })
    expect((await client.order(trader, { clientOrderId: `t-${i}` })).orderId).toBe(placed.order.orderId)
    expect((await client.openOrders(trader)).map((o) => o.orderId)).toContain(placed.order.orderId)
    expect((await client.depth(5)).bids[0]).toEqual(['10.00', '1.000'])
    expect((await client.status()).symbol).toBe('BTCUSDT')
    const canceled = await client.cancel(trader, { orderId: BigInt(placed.order.orderId) })
    expect(canceled.status).toBe('CANCELED')

    const unknown = await client.cancel(trader, { orderId: 999_999n }).catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(BourseError)
    expect(unknown).toMatchObject({ code: 'not_found', message: 'Unknown order sent.' })
    const tooMuch = await client
      .place({ userId: trader, side: 'BUY', type: 'LIMIT', timeInForce: 'GTC', price: '10', quantity: '500' })
      .catch((e: unknown) => e)
    expect(tooMuch).toMatchObject({
      code: 'insufficient_funds',
      message: 'Account has insufficient balance for requested action.',
    })
    const offTick = await client
      .place({
        userId: trader,
        side: 'BUY',
        type: 'LIMIT',
        timeInForce: 'GTC',
        price: '10.001',
        quantity: '1',
      })
      .catch((e: unknown) => e)
    expect(offTick).toMatchObject({ code: 'invalid_input', field: 'price' })
  })
})

const bid = { userId: 1n, side: 'BUY', type: 'LIMIT', price: '10', quantity: '1' } as const

it('reports an engine that cannot be reached as unavailable', async () => {
  const client = EngineClient.remote('BTCUSDT', `http://127.0.0.1:${await freePort()}`)
  await expect(client.status()).rejects.toMatchObject({ code: 'unavailable' })
  await expect(client.place(bid)).rejects.toMatchObject({ code: 'unavailable' })
})

it('reports a command the engine received but never answered as of unknown outcome', async () => {
  const silent = await startSilentServer()
  try {
    const client = EngineClient.remote('BTCUSDT', silent.url)
    await expect(client.place(bid)).rejects.toMatchObject({ code: 'outcome_unknown' })
    await expect(client.cancel(1n, { orderId: 1n })).rejects.toMatchObject({ code: 'outcome_unknown' })
    // A read changes nothing, whatever became of it.
    await expect(client.status()).rejects.toMatchObject({ code: 'unavailable' })
  } finally {
    await silent.close()
  }
})
