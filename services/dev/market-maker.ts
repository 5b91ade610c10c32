/**
 * The demo's market-making bot: every tick it replaces a ladder of bids and asks around a drifting mid price
 * on each market, and a second bot takes from it now and then, so the demo shows trades, k-lines and a moving
 * book. It drives the engines in-process, the way any client's orders end up.
 */
import type { MatchingEngine } from '../engine/engine.ts'
import type { MarketUnits } from '../engine/market.ts'

const LEVELS = 5
const startPrices: Record<string, number> = { BTCUSDT: 65_000, ETHUSDT: 3_200 }

export interface MarketMaker {
  stop(): void
}

export function startMarketMaker(
  engines: readonly MatchingEngine[],
  bots: { maker: bigint; taker: bigint },
  tickMs = 1000,
): MarketMaker {
  const mids = new Map(engines.map((e) => [e.symbol, startPrices[e.symbol] ?? 100]))
  let running = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    Promise.all(engines.map((engine) => tick(engine, bots, mids)))
      .catch(() => {}) // a halted market or a full book refuses some orders; the next tick tries again
      .finally(() => {
        running = false
      })
  }, tickMs)
  return { stop: () => clearInterval(timer) }
}

async function tick(
  engine: MatchingEngine,
  bots: { maker: bigint; taker: bigint },
  mids: Map<string, number>,
) {
  const mid = mids.get(engine.symbol)! * (1 + (Math.random() - 0.5) * 0.004)
  mids.set(engine.symbol, mid)
  const units = engine.units
  await engine.submit({ kind: 'cancelAll', userId: bots.maker })
  const ladder = Array.from({ length: LEVELS }, (_, i) => i + 1).flatMap((level) => [
    place(engine, bots.maker, 'BUY', price(units, mid * (1 - level * 0.0005)), size(units, mid)),
    place(engine, bots.maker, 'SELL', price(units, mid * (1 + level * 0.0005)), size(units, mid)),
  ])
  await Promise.allSettled(ladder)
  if (Math.random() < 0.6) {
    const side = Math.random() < 0.5 ? 'BUY' : 'SELL'
    await engine
      .submit({
        kind: 'place',
        order: { userId: bots.taker, side, type: 'MARKET', quantity: size(units, mid) },
      })
      .catch(() => {})
  }
}

function place(
  engine: MatchingEngine,
  userId: bigint,
  side: 'BUY' | 'SELL',
  price: string,
  quantity: string,
) {
  return engine.submit({ kind: 'place', order: { userId, side, type: 'LIMIT', price, quantity } })
}

/** A price on the market's tick grid. */
function price(units: MarketUnits, value: number): string {
  return units.price(units.priceToTicks(value.toFixed(2), 'price'))
}

/** About 100 to 1,000 quote worth, on the lot grid. */
function size(units: MarketUnits, mid: number): string {
  const quote = 100 + Math.random() * 900
  const lots = Math.max(1, Math.round(quote / mid / Number(units.row.lotSize)))
  return units.quantity(lots)
}
