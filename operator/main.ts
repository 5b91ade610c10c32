/**
 * `bourse operator`: reconciles Markets, Exchanges and Wallets in the cluster it runs in (or the
 * one KUBECONFIG names). Env: BOURSE_OPERATOR_NAMESPACE (the Lease's namespace, default the pod's),
 * BOURSE_WATCH_NAMESPACE (one namespace; default all), BOURSE_OPERATOR_PORT (/metrics /healthz /readyz,
 * default 8080), BOURSE_HTTP_HOST (default 0.0.0.0), POD_NAME (leader identity).
 */
import { readFileSync } from 'node:fs'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import { z } from 'zod'
import { fromEnv, port } from '../lib/config.ts'
import { untilStopped } from '../lib/lifecycle.ts'
import { createLogger } from '../lib/log.ts'
import { metricsRegistry } from '../lib/metrics.ts'
import { httpEngineClient, postgresOpenOrderUsers } from './engine-client.ts'
import { startOperator } from './operator.ts'

const serviceAccountNamespace = '/var/run/secrets/kubernetes.io/serviceaccount/namespace'

const OperatorConfig = z.object({
  BOURSE_OPERATOR_NAMESPACE: z.string().optional(),
  BOURSE_WATCH_NAMESPACE: z.string().optional(),
  BOURSE_OPERATOR_PORT: port().default(8080),
  BOURSE_HTTP_HOST: z.string().default('0.0.0.0'),
  POD_NAME: z.string().optional(),
})

export async function main(_args: string[]): Promise<void> {
  const config = fromEnv(OperatorConfig, { component: 'operator' })
  const log = createLogger('operator')
  const kc = new KubeConfig()
  kc.loadFromDefault()
  let leaseNamespace = config.BOURSE_OPERATOR_NAMESPACE
  if (leaseNamespace === undefined) {
    try {
      leaseNamespace = readFileSync(serviceAccountNamespace, 'utf8').trim()
    } catch {
      leaseNamespace = 'default'
    }
  }
  const core = kc.makeApiClient(CoreV1Api)
  const custom = await import('@kubernetes/client-node').then((k) => kc.makeApiClient(k.CustomObjectsApi))
  const engine = httpEngineClient({
    openOrderUsers: postgresOpenOrderUsers(async (m) => {
      const namespace = m.metadata!.namespace!
      const x = (await custom.getNamespacedCustomObject({
        group: 'bourse.dev',
        version: 'v1alpha1',
        namespace,
        plural: 'exchanges',
        name: m.spec.exchangeRef.name,
      })) as { spec: { postgres: { secretRef: { name: string; key?: string } } } }
      const ref = x.spec.postgres.secretRef
      const secret = await core.readNamespacedSecret({ name: ref.name, namespace })
      const value = secret.data?.[ref.key ?? 'url']
      if (!value) throw new Error(`Secret ${ref.name} has no key ${ref.key ?? 'url'}`)
      return Buffer.from(value, 'base64').toString('utf8')
    }),
  })
  const operator = await startOperator({
    kc,
    log,
    registry: metricsRegistry(),
    engine,
    leaseNamespace,
    ...(config.BOURSE_WATCH_NAMESPACE && { watchNamespace: config.BOURSE_WATCH_NAMESPACE }),
    ...(config.POD_NAME && { identity: config.POD_NAME }),
    httpPort: config.BOURSE_OPERATOR_PORT,
    httpHost: config.BOURSE_HTTP_HOST,
    onLostLeadership: () => {
      log.fatal('lost leadership: exiting so that a fresh process competes again')
      process.exit(1)
    },
  })
  log.info({ identity: operator.identity, url: operator.http?.url, leaseNamespace }, 'operator started')
  await untilStopped()
  await operator.stop()
}
