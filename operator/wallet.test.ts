import type { V1Deployment } from '@kubernetes/client-node'
import { describe, expect, test } from 'vitest'
import { statusJson } from '../services/syncer/main.ts'
import type { Exchange } from './market.ts'
import {
  computeWalletStatus,
  desiredSyncerDeployment,
  desiredSyncerService,
  desiredWalletConfigMap,
  syncerStatusOf,
  type Wallet,
  type WalletSpec,
  walletConfigHash,
} from './wallet.ts'

const exchange: Exchange = {
  apiVersion: 'bourse.dev/v1alpha1',
  kind: 'Exchange',
  metadata: { name: 'bourse', namespace: 'ns', uid: 'x-1' },
  spec: {
    image: 'ghcr.io/bourse/bourse:0.1.0',
    postgres: { secretRef: { name: 'pg' } },
    redis: { secretRef: { name: 'redis' } },
    nsq: { secretRef: { name: 'nsq' } },
    clickhouse: { secretRef: { name: 'ch' } },
    assets: [],
  },
}

const XPUB =
  'xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8'

function wallet(patch: Partial<WalletSpec> = {}, generation = 1): Wallet {
  return {
    apiVersion: 'bourse.dev/v1alpha1',
    kind: 'Wallet',
    metadata: { name: 'ethereum', namespace: 'ns', uid: 'w-1', generation },
    spec: {
      exchangeRef: { name: 'bourse' },
      chain: { id: 1, name: 'ethereum' },
      rpc: { secretRef: { name: 'ethereum-rpc' } },
      confirmations: 12,
      assets: [{ symbol: 'ETH', native: true, decimals: 18 }],
      depositKey: { xpub: XPUB },
      hotWallet: { keySecretRef: { name: 'ethereum-hot-wallet' } },
      coldWallet: { address: '0x00000000219ab540356cBB839Cbe05303d7705Fa' },
      gasKeeper: { keySecretRef: { name: 'ethereum-gas-keeper' }, minBalance: '0.5' },
      ...patch,
    },
  }
}

describe('desired children of a Wallet', () => {
  test('syncer Deployment: one replica, Recreate, owned, hardened, probed, scraped', () => {
    const d = desiredSyncerDeployment(wallet(), exchange)
    expect(d.metadata!.name).toBe('syncer-ethereum')
    expect(d.metadata!.ownerReferences).toEqual([
      {
        apiVersion: 'bourse.dev/v1alpha1',
        kind: 'Wallet',
        name: 'ethereum',
        uid: 'w-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ])
    expect(d.spec!.replicas).toBe(1)
    expect(d.spec!.strategy).toEqual({ type: 'Recreate' })
    const pod = d.spec!.template.spec!
    const c = pod.containers[0]!
    expect(c.args).toEqual(['syncer', '--wallet', 'ethereum'])
    expect(c.image).toBe('ghcr.io/bourse/bourse:0.1.0')
    expect(c.livenessProbe!.httpGet!.path).toBe('/healthz')
    expect(c.readinessProbe!.httpGet!.path).toBe('/readyz')
    expect(c.resources!.requests).toBeDefined()
    expect(c.resources!.limits).toBeDefined()
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true })
    expect(pod.securityContext!.runAsNonRoot).toBe(true)
    expect(pod.automountServiceAccountToken).toBe(false)
    expect(d.spec!.template.metadata!.annotations!['prometheus.io/port']).toBe('9090')
    for (const [k, v] of Object.entries(d.spec!.selector.matchLabels!))
      expect(d.spec!.template.metadata!.labels![k]).toBe(v)
    expect(desiredSyncerService(wallet()).spec!.ports![0]!.port).toBe(9090)
  })

  test('the spec as a mounted file, the RPC URLs by secretKeyRef, the hot key as a file only', () => {
    const d = desiredSyncerDeployment(wallet(), exchange)
    const pod = d.spec!.template.spec!
    const c = pod.containers[0]!
    const env = Object.fromEntries(c.env!.map((e) => [e.name, e]))
    expect(env.BOURSE_WALLET_FILE!.value).toBe('/etc/bourse/wallet.json')
    expect(env.BOURSE_CHAIN_RPC_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'ethereum-rpc', key: 'urls' })
    expect(env.BOURSE_DATABASE_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'pg', key: 'url' })
    expect(env.BOURSE_WALLET_HOT_KEY_FILE!.value).toBe('/var/run/secrets/bourse/hot-wallet/privateKey')
    // No env var takes the hot key (or the gas keeper's) from a Secret: it is a file, nothing else.
    const fromSecret = c
      .env!.filter((e) => e.valueFrom?.secretKeyRef)
      .map((e) => e.valueFrom!.secretKeyRef!.name)
    expect(fromSecret).not.toContain('ethereum-hot-wallet')
    expect(fromSecret).not.toContain('ethereum-gas-keeper')
    expect(env.BOURSE_WALLET_HOT_KEY).toBeUndefined()
    const vol = pod.volumes!.find((v) => v.name === 'hot-wallet')!
    expect(vol.secret).toEqual({
      secretName: 'ethereum-hot-wallet',
      items: [{ key: 'privateKey', path: 'privateKey' }],
      defaultMode: 0o440,
    })
    expect(c.volumeMounts).toContainEqual({
      name: 'hot-wallet',
      mountPath: '/var/run/secrets/bourse/hot-wallet',
      readOnly: true,
    })
    expect(pod.volumes!.some((v) => v.secret?.secretName === 'ethereum-gas-keeper')).toBe(false)

    const cm = desiredWalletConfigMap(wallet())
    const file = JSON.parse(cm.data!['wallet.json']!)
    expect(file).toMatchObject({ chain: { id: 1 }, confirmations: 12, depositKey: { xpub: XPUB } })
    expect(file.assets).toEqual([{ symbol: 'ETH', native: true, decimals: 18 }])
    // No Secret reference (nor anything from one) in the file.
    expect(cm.data!['wallet.json']).not.toMatch(/secretRef|ethereum-rpc|hot-wallet|gas-keeper/)
  })

  test('an xpub kept in a Secret comes by secretKeyRef; a spec change rolls the syncer', () => {
    const w = wallet({ depositKey: { secretRef: { name: 'xpub' } } })
    const env = desiredSyncerDeployment(w, exchange).spec!.template.spec!.containers[0]!.env!
    expect(env.find((e) => e.name === 'BOURSE_WALLET_XPUB')!.valueFrom!.secretKeyRef).toEqual({
      name: 'xpub',
      key: 'xpub',
    })
    expect(walletConfigHash(wallet({ confirmations: 20 }), exchange)).not.toBe(
      walletConfigHash(wallet(), exchange),
    )
  })
})

describe('Wallet status', () => {
  const available: V1Deployment = {
    metadata: { name: 'syncer-ethereum', generation: 1 },
    spec: { replicas: 1, selector: {}, template: {} },
    status: {
      observedGeneration: 1,
      replicas: 1,
      updatedReplicas: 1,
      availableReplicas: 1,
      conditions: [{ type: 'Available', status: 'True' }],
    } as V1Deployment['status'],
  }
  const ready = (s: { conditions?: { type: string; status: string; reason: string; message: string }[] }) =>
    s.conditions!.find((c) => c.type === 'Ready')!

  test('Pending without its Exchange', () => {
    const s = computeWalletStatus(wallet(), { exchangeFound: false }, 'T')
    expect(s.phase).toBe('Pending')
    expect(ready(s).reason).toBe('ExchangeNotFound')
  })

  test('Progressing until the syncer is Available', () => {
    const s = computeWalletStatus(
      wallet(),
      { exchangeFound: true, deployment: { ...available, status: {} } },
      'T',
    )
    expect(s.phase).toBe('Progressing')
  })

  test('head, scanned and lag from the syncer: CatchingUp beyond the confirmations, then Following', () => {
    const behind = computeWalletStatus(
      wallet(),
      { exchangeFound: true, deployment: available, syncer: { head: 1000, scanned: 900, lag: 100 } },
      'T',
    )
    expect(behind).toMatchObject({ phase: 'CatchingUp', headBlock: 1000, processedBlock: 900 })
    expect(ready(behind).message).toContain('100 blocks behind')
    const following = computeWalletStatus(
      { ...wallet(), status: behind },
      { exchangeFound: true, deployment: available, syncer: { head: 1010, scanned: 1008, lag: 2 } },
      'T2',
    )
    expect(following).toMatchObject({
      phase: 'Following',
      headBlock: 1010,
      processedBlock: 1008,
      observedGeneration: 1,
    })
    expect(ready(following)).toMatchObject({
      status: 'True',
      message: 'head 1010, scanned 1008, lag 2 blocks',
    })
  })

  test('Following from the Deployment alone when /status is unreachable, keeping the last blocks', () => {
    const s = computeWalletStatus(
      { ...wallet(), status: { headBlock: 5, processedBlock: 4 } },
      { exchangeFound: true, deployment: available },
      'T',
    )
    expect(s).toMatchObject({ phase: 'Following', headBlock: 5, processedBlock: 4 })
    expect(ready(s).message).toContain('not reachable')
  })

  test("lag and the gas keeper's balance from the syncer's /status, as the syncer writes it", () => {
    const KEEPER = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
    const w = wallet({ gasKeeper: { keySecretRef: { name: 'gk' }, address: KEEPER, minBalance: '0.5' } })
    expect(JSON.parse(desiredWalletConfigMap(w).data!['wallet.json']!).gasKeeper).toEqual({
      address: KEEPER,
      minBalance: '0.5',
    })
    const body = statusJson(
      {
        walletId: 'ethereum',
        chainId: 1n,
        head: 120n,
        scanned: 117n,
        lag: 3n,
        finalized: null,
        lastError: null,
      },
      (t) => t,
      undefined,
      { address: KEEPER, balance: '1.25' },
    )
    const syncer = syncerStatusOf(JSON.parse(JSON.stringify(body)))!
    expect(syncer).toEqual({ head: 120, scanned: 117, lag: 3, lastError: null, gasKeeperBalance: '1.25' })
    const s = computeWalletStatus(w, { exchangeFound: true, deployment: available, syncer }, 'T')
    expect(s).toMatchObject({ headBlock: 120, processedBlock: 117, lag: 3, gasKeeperBalance: '1.25' })
    // Unreachable next time: the last values stay.
    const later = computeWalletStatus(
      { ...w, status: s },
      { exchangeFound: true, deployment: available },
      'T2',
    )
    expect(later).toMatchObject({ lag: 3, gasKeeperBalance: '1.25' })
    // No gas keeper address, or a node that did not answer: no balance.
    const none = statusJson(
      { walletId: 'ethereum', chainId: 1n, head: 1n, scanned: 1n, lag: 0n, finalized: null, lastError: null },
      (t) => t,
      undefined,
      { address: KEEPER, balance: null },
    )
    expect(syncerStatusOf(JSON.parse(JSON.stringify(none)))!.gasKeeperBalance).toBeUndefined()
    expect(syncerStatusOf({ head: 'x' })).toBeUndefined()
  })

  test('Degraded when the syncer reports an error', () => {
    const s = computeWalletStatus(
      wallet(),
      {
        exchangeFound: true,
        deployment: available,
        syncer: { head: 1, scanned: 1, lag: 0, lastError: 'rpc down' },
      },
      'T',
    )
    expect(s.phase).toBe('Degraded')
  })
})
