import { describe } from 'vitest'
import { busContract } from './bus.contract.ts'
import { createBus } from './index.ts'

describe('in-process bus', () => {
  busContract(() => createBus({ kind: 'memory' }))
})
