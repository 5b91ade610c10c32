/**
 * Compiles the Solidity sources in chain/contracts with solc-js (the npm `solc`, which bundles the
 * compiler as WebAssembly): offline, in-process, about two seconds. Nothing precompiled is checked in.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import solc from 'solc'
import type { Abi, Hex } from 'viem'

export interface CompiledContract {
  readonly abi: Abi
  readonly bytecode: Hex
}

export const CONTRACT_SOURCES = ['TestToken.sol', 'OrderBook.sol'] as const
export type ContractName = 'TestToken' | 'OrderBook'

const contractsDir = new URL('./contracts/', import.meta.url)

interface SolcOutput {
  errors?: { severity: 'error' | 'warning' | 'info'; formattedMessage: string }[]
  contracts?: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>
}

let cache: Map<string, CompiledContract> | undefined

/** solc's version string, e.g. `0.8.37+commit.f401782d.Emscripten.clang`. */
export function solcVersion(): string {
  return solc.version()
}

/**
 * Every contract in chain/contracts, compiled once per process. `evmVersion` is pinned (not solc's
 * latest default) so that the bytecode also runs on chains that lag behind mainnet's hard forks.
 */
export function compileContracts(): Map<string, CompiledContract> {
  if (cache !== undefined) return cache
  const sources = Object.fromEntries(
    CONTRACT_SOURCES.map((file) => [
      file,
      { content: readFileSync(fileURLToPath(new URL(file, contractsDir)), 'utf8') },
    ]),
  )
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  }
  const output = JSON.parse(
    solc.compile(JSON.stringify(input), {
      import: (path: string) => ({ error: `imports are not used here (asked for ${path})` }),
    }),
  ) as SolcOutput
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0) throw new Error(`solc: ${errors.map((e) => e.formattedMessage).join('\n')}`)
  const compiled = new Map<string, CompiledContract>()
  for (const file of Object.values(output.contracts ?? {})) {
    for (const [name, c] of Object.entries(file)) {
      compiled.set(name, { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` })
    }
  }
  cache = compiled
  return compiled
}

export function compiledContract(name: ContractName): CompiledContract {
  const c = compileContracts().get(name)
  if (c === undefined) throw new Error(`contract ${name} not found in chain/contracts`)
  return c
}
