/**
 * The custom resources against the real kube-apiserver of scripts/cluster (`make e2e`): the CRDs install,
 * the examples apply, `kubectl get bourse` lists them with their printer columns, and every bad resource
 * (or bad update) is refused by the API server's schema and CEL validation with a message that names the
 * field. Nothing is mocked: the operator is not involved, so what is tested is what the API server
 * enforces on its own.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
} from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const root = join(import.meta.dirname, '..')
const run = promisify(execFile)

const kubeconfigPath = process.env.KUBECONFIG
if (!kubeconfigPath) {
  throw new Error('KUBECONFIG is not set: run the e2e suites with `make e2e` (it starts scripts/cluster)')
}
// The kubectl built with the cluster (Debian's is two minors behind the 1.34 server).
const kubectlBin = process.env.BOURSE_KUBECTL ?? 'kubectl'

const kc = new KubeConfig()
kc.loadFromFile(kubeconfigPath)
const objects = KubernetesObjectApi.makeApiClient(kc)
const custom = kc.makeApiClient(CustomObjectsApi)
const core = kc.makeApiClient(CoreV1Api)

const group = 'bourse.dev'
const version = 'v1alpha1'
const apiVersion = `${group}/${version}`
const namespace = `bourse-e2e-crds-${randomBytes(4).toString('hex')}`

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(kubectlBin, ['--kubeconfig', kubeconfigPath!, ...args], {
    maxBuffer: 16 * 1024 * 1024,
  })
  return stdout
}

/** Runs kubectl expecting it to fail; returns its stderr. */
async function kubectlFails(input: string, ...args: string[]): Promise<string> {
  const child = execFile(kubectlBin, ['--kubeconfig', kubeconfigPath!, ...args])
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  child.stdin!.end(input)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  expect(code, `kubectl ${args.join(' ')} should have failed`).not.toBe(0)
  return stderr
}

// biome-ignore lint/suspicious/noExplicitAny: test fixtures are free-form manifests
type Manifest = KubernetesObject & { spec: any; status?: any }

function examples(): Map<string, Manifest> {
  const byName = new Map<string, Manifest>()
  for (const file of readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of loadAllYaml(readFileSync(join(root, 'examples', file), 'utf8')) as Manifest[]) {
      byName.set(`${doc.kind}/${doc.metadata!.name}`, doc)
    }
  }
  return byName
}

/** A fresh copy of an example under a new name, in the test namespace. */
function example(key: string, name: string): Manifest {
  const doc = examples().get(key)
  if (!doc) throw new Error(`no example ${key}`)
  return { ...structuredClone(doc), metadata: { name, namespace } }
}

interface Cause {
  field?: string
  message?: string
  reason?: string
}

/** Expects the API server to refuse with 422 Invalid; returns the Status's message and causes. */
async function refused(request: Promise<unknown>): Promise<{ message: string; causes: Cause[] }> {
  const error = await request.then(
    () => {
      throw new Error('the API server accepted a resource it should have refused')
    },
    (e: unknown) => e,
  )
  if (!(error instanceof ApiException)) throw error
  expect(error.code).toBe(422)
  const status = (typeof error.body === 'string' ? JSON.parse(error.body) : error.body) as {
    reason: string
    message: string
    details?: { causes?: Cause[] }
  }
  expect(status.reason).toBe('Invalid')
  return { message: status.message, causes: status.details?.causes ?? [] }
}

/** The refusal names `field` and says `text` about it, in a cause and in the message people see. */
function expectNamed(result: { message: string; causes: Cause[] }, field: string, text: string | RegExp) {
  const matching = result.causes.filter(
    (c) =>
      c.field === field &&
      (typeof text === 'string' ? c.message?.includes(text) : text.test(c.message ?? '')),
  )
  expect(matching, `no cause for ${field} matching ${text} in ${JSON.stringify(result.causes)}`).not.toEqual(
    [],
  )
  expect(result.message).toContain(`${field}: `)
}

let seq = 0
const fresh = (prefix: string) => `${prefix}-${++seq}`

beforeAll(async () => {
  await kubectl('apply', '--server-side', '--field-manager=bourse-e2e', '-f', join(root, 'crds'))
  await kubectl(
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/exchanges.bourse.dev',
    'crd/markets.bourse.dev',
    'crd/wallets.bourse.dev',
  )
  await core.createNamespace({ body: { metadata: { name: namespace } } })
})

afterAll(async () => {
  await core.deleteNamespace({ name: namespace }).catch(() => {})
})

describe('the CRDs', () => {
  test('are served with short names and the bourse category', async () => {
    const out = await kubectl('api-resources', `--api-group=${group}`, '-o', 'wide', '--no-headers')
    const rows = out
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
    const byKind = new Map(rows.map((r) => [r[4], r]))
    expect([...byKind.keys()].sort()).toEqual(['Exchange', 'Market', 'Wallet'])
    // NAME SHORTNAMES APIVERSION NAMESPACED KIND VERBS CATEGORIES
    expect(byKind.get('Exchange')!.slice(0, 5)).toEqual(['exchanges', 'exch', apiVersion, 'true', 'Exchange'])
    expect(byKind.get('Market')!.slice(0, 5)).toEqual(['markets', 'mkt', apiVersion, 'true', 'Market'])
    expect(byKind.get('Wallet')!.slice(0, 5)).toEqual(['wallets', 'wlt', apiVersion, 'true', 'Wallet'])
    for (const row of rows) expect(row.at(-1)).toBe('bourse')
  })

  test('publish their schema with descriptions (kubectl explain)', async () => {
    // The API server publishes a new CRD's OpenAPI a few seconds after it is Established.
    const explain = async (field: string) => {
      for (let tries = 0; ; tries++) {
        try {
          return await kubectl('explain', field, `--api-version=${apiVersion}`)
        } catch (error) {
          if (tries >= 120) throw error
          await new Promise((resolve) => setTimeout(resolve, 250))
        }
      }
    }
    const out = await explain('market.spec.takerFee')
    expect(out).toContain('Fee rate charged to the incoming order')
    const wallet = await explain('wallet.spec.depositKey')
    expect(wallet).toContain('extended public key')
  })
})

describe('the examples', () => {
  beforeAll(async () => {
    await kubectl('apply', '-n', namespace, '-f', join(root, 'examples'))
  })

  test('apply, with defaults filled in by the API server', async () => {
    const eth = (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'markets',
      name: 'eth-usdt',
    })) as Manifest
    expect(eth.spec).toMatchObject({ base: 'ETH', quote: 'USDT', trading: 'Enabled' })
    const btc = (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'markets',
      name: 'btc-usdt',
    })) as Manifest
    expect(btc.spec.trading).toBe('Enabled')
    const wallet = (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'wallets',
      name: 'ethereum',
    })) as Manifest
    expect(wallet.spec.rpc.secretRef.key).toBe('urls')
    expect(wallet.spec.sweep.enabled).toBe(true)
    const exchange = (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'exchanges',
      name: 'bourse',
    })) as Manifest
    expect(exchange.spec.postgres.secretRef.key).toBe('url')
    expect(exchange.spec.monitoring.podDisruptionBudgets).toBe(true)
  })

  test('are listed by `kubectl get bourse`', async () => {
    const out = await kubectl('get', 'bourse', '-n', namespace, '-o', 'name')
    expect(out.trim().split('\n').sort()).toEqual([
      'exchange.bourse.dev/bourse',
      'market.bourse.dev/btc-usdt',
      'market.bourse.dev/eth-usdt',
      'wallet.bourse.dev/ethereum',
    ])
  })

  test('show status in their printer columns, written through the status subresource', async () => {
    const name = 'btc-usdt'
    const market = (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'markets',
      name,
    })) as Manifest
    const generation = market.metadata!.generation
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    market.status = {
      observedGeneration: generation,
      phase: 'Trading',
      lastPrice: '64000.50',
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'EngineAvailable',
          message: 'engine ready',
          lastTransitionTime: now,
        },
      ],
    }
    await custom.replaceNamespacedCustomObjectStatus({
      group,
      version,
      namespace,
      plural: 'markets',
      name,
      body: market,
    })
    const wallet = (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'wallets',
      name: 'ethereum',
    })) as Manifest
    wallet.status = {
      phase: 'Following',
      headBlock: 21000000,
      processedBlock: 20999988,
      lag: 12,
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'CatchingUp',
          message: '12 blocks behind',
          lastTransitionTime: now,
        },
      ],
    }
    await custom.replaceNamespacedCustomObjectStatus({
      group,
      version,
      namespace,
      plural: 'wallets',
      name: 'ethereum',
      body: wallet,
    })

    const markets = await kubectl('get', 'markets', '-n', namespace)
    const [header, ...lines] = markets.trim().split('\n')
    expect(header!.split(/\s{2,}/)).toEqual(['NAME', 'BASE', 'QUOTE', 'READY', 'PHASE', 'LAST PRICE', 'AGE'])
    const btc = lines.find((l) => l.startsWith('btc-usdt'))!.split(/\s+/)
    expect(btc.slice(0, 6)).toEqual(['btc-usdt', 'BTC', 'USDT', 'True', 'Trading', '64000.50'])

    const wallets = await kubectl('get', 'wlt', '-n', namespace)
    const [wHeader, wLine] = wallets.trim().split('\n')
    expect(wHeader!.split(/\s{2,}/)).toEqual(['NAME', 'CHAIN', 'READY', 'PHASE', 'HEAD BLOCK', 'LAG', 'AGE'])
    expect(wLine!.split(/\s+/).slice(0, 6)).toEqual(['ethereum', '1', 'False', 'Following', '21000000', '12'])

    // A status write is not a spec change: the generation stays.
    const after = (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'markets',
      name,
    })) as Manifest
    expect(after.metadata!.generation).toBe(generation)
    expect(after.status.lastPrice).toBe('64000.50')
  })

  test('status written through the main resource is ignored', async () => {
    const market = (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'markets',
      name: 'eth-usdt',
    })) as Manifest
    market.status = { phase: 'Halted' }
    const replaced = (await objects.replace(market)) as Manifest
    expect(replaced.status?.phase).toBeUndefined()
  })
})

// Each case: a valid example, one change that breaks it, and the field the API server must name.
interface BadCase {
  name: string
  from: string
  // biome-ignore lint/suspicious/noExplicitAny: spec edits on free-form manifests
  edit: (spec: any) => void
  field: string
  says: string | RegExp
}

const badCreates: BadCase[] = [
  {
    name: 'a market whose quote is its base',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.quote = 'BTC'
    },
    field: 'spec.quote',
    says: 'quote must differ from base',
  },
  {
    name: 'a zero tick size',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.tickSize = '0'
    },
    field: 'spec.tickSize',
    says: 'tickSize must be greater than zero',
  },
  {
    name: 'a zero lot size written with decimals',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.lotSize = '0.000'
    },
    field: 'spec.lotSize',
    says: 'lotSize must be greater than zero',
  },
  {
    name: 'a zero minimum notional',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.minNotional = '0'
    },
    field: 'spec.minNotional',
    says: 'minNotional must be greater than zero',
  },
  {
    name: 'a tick size in exponent notation (amounts are plain decimal strings)',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.tickSize = '1e-2'
    },
    field: 'spec.tickSize',
    says: 'should match',
  },
  {
    name: 'a taker fee above 10%',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.takerFee = '0.5'
    },
    field: 'spec.takerFee',
    says: 'takerFee must be between 0 and 0.1',
  },
  {
    name: 'a negative taker fee',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.takerFee = '-0.001'
    },
    field: 'spec.takerFee',
    says: 'takerFee must be between 0 and 0.1',
  },
  {
    name: 'a maker rebate above 1%',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.makerFee = '-0.02'
    },
    field: 'spec.makerFee',
    says: 'makerFee must be between -0.01 and 0.1',
  },
  {
    name: 'a maker rebate larger than the taker fee',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.makerFee = '-0.002'
      s.takerFee = '0.001'
    },
    field: 'spec.makerFee',
    says: 'makerFee must not be a rebate larger than takerFee',
  },
  {
    name: 'a price band with both percent and absolute bounds',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.priceBand = { percent: 10, minPrice: '1000', maxPrice: '200000' }
    },
    field: 'spec.priceBand',
    says: 'priceBand.percent and priceBand.minPrice/maxPrice are mutually exclusive',
  },
  {
    name: 'a price band whose maximum is below its minimum',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.priceBand = { minPrice: '2000', maxPrice: '1000' }
    },
    field: 'spec.priceBand.maxPrice',
    says: 'priceBand.maxPrice must be greater than priceBand.minPrice',
  },
  {
    name: 'a lower-case asset symbol',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.base = 'btc'
    },
    field: 'spec.base',
    says: 'should match',
  },
  {
    name: 'an unknown trading state',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.trading = 'Paused'
    },
    field: 'spec.trading',
    says: 'Unsupported value',
  },
  {
    name: 'a market without a tick size',
    from: 'Market/btc-usdt',
    edit: (s) => {
      delete s.tickSize
    },
    field: 'spec.tickSize',
    says: 'Required value',
  },
  {
    name: 'a wallet asset that is both native and a contract',
    from: 'Wallet/ethereum',
    edit: (s) => {
      s.assets[0].contract = '0xdAC17F958D2ee523a2206206994597C13D831ec7'
    },
    field: 'spec.assets[0].contract',
    says: 'native and contract are mutually exclusive',
  },
  {
    name: 'a wallet token without a contract',
    from: 'Wallet/ethereum',
    edit: (s) => {
      delete s.assets[1].contract
    },
    field: 'spec.assets[1].contract',
    says: 'contract is required unless native is true',
  },
  {
    name: 'a wallet with two native assets',
    from: 'Wallet/ethereum',
    edit: (s) => {
      s.assets[1] = { symbol: 'WETH', native: true, decimals: 18 }
    },
    field: 'spec.assets',
    says: 'at most one asset of assets may be native',
  },
  {
    name: 'a deposit key given both inline and by Secret',
    from: 'Wallet/ethereum',
    edit: (s) => {
      s.depositKey.secretRef = { name: 'deposit-xpub' }
    },
    field: 'spec.depositKey',
    says: 'depositKey.xpub and depositKey.secretRef are mutually exclusive',
  },
  {
    name: 'a deposit key that is a private key',
    from: 'Wallet/ethereum',
    edit: (s) => {
      s.depositKey.xpub = s.depositKey.xpub.replace(/^xpub/, 'xprv')
    },
    field: 'spec.depositKey.xpub',
    says: 'should match',
  },
  {
    name: 'chain id 0',
    from: 'Wallet/ethereum',
    edit: (s) => {
      s.chain.id = 0
    },
    field: 'spec.chain.id',
    says: 'should be greater than or equal to 1',
  },
  {
    name: 'a malformed cold wallet address',
    from: 'Wallet/ethereum',
    edit: (s) => {
      s.coldWallet.address = '0x1234'
    },
    field: 'spec.coldWallet.address',
    says: 'should match',
  },
  {
    name: 'zero confirmations',
    from: 'Wallet/ethereum',
    edit: (s) => {
      s.confirmations = 0
    },
    field: 'spec.confirmations',
    says: 'should be greater than or equal to 1',
  },
  {
    name: 'an asset listed twice on an exchange',
    from: 'Exchange/bourse',
    edit: (s) => {
      s.assets.push({ symbol: 'BTC', precision: 6 })
    },
    field: 'spec.assets[3]',
    says: 'Duplicate value',
  },
  {
    name: 'a display precision above 18',
    from: 'Exchange/bourse',
    edit: (s) => {
      s.assets[0].precision = 19
    },
    field: 'spec.assets[0].precision',
    says: 'should be less than or equal to 18',
  },
  {
    name: 'negative replicas',
    from: 'Exchange/bourse',
    edit: (s) => {
      s.gateway.replicas = -1
    },
    field: 'spec.gateway.replicas',
    says: 'should be greater than or equal to 0',
  },
  {
    name: 'an exchange without a Postgres Secret',
    from: 'Exchange/bourse',
    edit: (s) => {
      delete s.postgres
    },
    field: 'spec.postgres',
    says: 'Required value',
  },
]

describe('a bad resource is refused, naming the field', () => {
  test.each(badCreates)('$name ($field)', async ({ from, edit, field, says }) => {
    const doc = example(from, fresh('bad'))
    edit(doc.spec)
    expectNamed(await refused(objects.create(doc)), field, says)
  })

  test('kubectl shows the field and the rule message', async () => {
    const doc = example('Market/btc-usdt', fresh('bad'))
    doc.spec.quote = 'BTC'
    const stderr = await kubectlFails(JSON.stringify(doc), 'apply', '-f', '-')
    expect(stderr).toContain(`The Market "${doc.metadata!.name}" is invalid`)
    expect(stderr).toMatch(/spec\.quote: Invalid value: .*: quote must differ from base/)
  })
})

const badUpdates: BadCase[] = [
  {
    name: 'changing a market base',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.base = 'ETH'
    },
    field: 'spec.base',
    says: 'base is immutable',
  },
  {
    name: 'changing a market quote',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.quote = 'USDC'
    },
    field: 'spec.quote',
    says: 'quote is immutable',
  },
  {
    name: 'moving a market to another exchange',
    from: 'Market/btc-usdt',
    edit: (s) => {
      s.exchangeRef.name = 'other'
    },
    field: 'spec.exchangeRef',
    says: 'exchangeRef is immutable',
  },
  {
    name: 'changing a wallet chain id',
    from: 'Wallet/ethereum',
    edit: (s) => {
      s.chain.id = 137
    },
    field: 'spec.chain.id',
    says: 'chain.id is immutable',
  },
  {
    name: 'moving a wallet to another exchange',
    from: 'Wallet/ethereum',
    edit: (s) => {
      s.exchangeRef.name = 'other'
    },
    field: 'spec.exchangeRef',
    says: 'exchangeRef is immutable',
  },
]

describe('an update that changes an immutable field is refused, naming the field', () => {
  test.each(badUpdates)('$name ($field)', async ({ from, edit, field, says }) => {
    const created = (await objects.create(example(from, fresh('upd')))) as Manifest
    edit(created.spec)
    expectNamed(await refused(objects.replace(created)), field, says)
  })

  test('while fees, filters and trading may change', async () => {
    const created = (await objects.create(example('Market/btc-usdt', fresh('upd')))) as Manifest
    Object.assign(created.spec, {
      makerFee: '0.0005',
      takerFee: '0.0009',
      tickSize: '0.1',
      trading: 'Halted',
    })
    const replaced = (await objects.replace(created)) as Manifest
    expect(replaced.spec).toMatchObject({ makerFee: '0.0005', trading: 'Halted', base: 'BTC', quote: 'USDT' })
    expect(replaced.metadata!.generation).toBe(2)
  })
})
