/** The shared block-range reader on a real anvil: order, bounded concurrency, and a moved chain refused. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Anvil, startAnvil } from './anvil.ts'
import { ChainMoved, fetchBlockRange, getBlockOrNull, mapLimit } from './blocks.ts'
import { type ChainClients, chainClients } from './testing.ts'

let anvil: Anvil
let c: ChainClients

beforeAll(async () => {
  anvil = await startAnvil()
  c = chainClients(anvil)
  await c.mine(10)
}, 30_000)

afterAll(async () => {
  await anvil?.stop()
})

describe('mapLimit', () => {
  it('keeps the input order and never runs more than the limit at once', async () => {
    let running = 0
    let most = 0
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n, i) => {
      running++
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, n * 3))
      running--
      return `${i}:${n}`
    })
    expect(out).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3'])
    expect(most).toBe(2)
    expect(await mapLimit([], 4, async () => 1)).toEqual([])
  })
})

describe('fetchBlockRange', () => {
  it('returns linked blocks in order', async () => {
    const blocks = await fetchBlockRange(c.reader, 2n, 9n, { concurrency: 3 })
    expect(blocks.map((b) => b.number)).toEqual([2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n])
    for (let i = 1; i < blocks.length; i++) expect(blocks[i]!.parentHash).toBe(blocks[i - 1]!.hash)
  })

  it('answers null for a block above the head and ChainMoved for a range past it', async () => {
    expect(await getBlockOrNull(c.reader, 1000n)).toBeNull()
    await c.rollback(3)
    await expect(fetchBlockRange(c.reader, 5n, 10n)).rejects.toBeInstanceOf(ChainMoved)
  })
})
