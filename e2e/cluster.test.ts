/**
 * The local control plane of scripts/cluster behaves as the operator's e2e tests will need: kwok's fake
 * Nodes are Ready; a Deployment is scheduled and becomes Available (kwok marks its pods Running and Ready);
 * a Service gets EndpointSlices with the pods' addresses; a Job completes; the garbage collector deletes
 * what an owner leaves behind; TokenRequest mints ServiceAccount tokens that RBAC then judges. No container
 * runs: that is what kwok is, and the suites that need a process run it locally.
 */
import { randomBytes } from 'node:crypto'
import {
  AppsV1Api,
  AuthenticationV1Api,
  BatchV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  type V1Deployment,
} from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const kubeconfigPath = process.env.KUBECONFIG
if (!kubeconfigPath) {
  throw new Error('KUBECONFIG is not set: run the e2e suites with `make e2e` (it starts scripts/cluster)')
}
const kc = new KubeConfig()
kc.loadFromFile(kubeconfigPath)
const core = kc.makeApiClient(CoreV1Api)
const apps = kc.makeApiClient(AppsV1Api)
const batch = kc.makeApiClient(BatchV1Api)
const discovery = kc.makeApiClient(DiscoveryV1Api)

const namespace = `bourse-e2e-cluster-${randomBytes(4).toString('hex')}`
const labels = { app: 'smoke' }

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (error) {
      last = error
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
}

beforeAll(async () => {
  await core.createNamespace({ body: { metadata: { name: namespace } } })
  // The controller-manager creates each namespace's default ServiceAccount; pods need it.
  await eventually('the default ServiceAccount', async () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace }),
  )
})

afterAll(async () => {
  await core.deleteNamespace({ name: namespace }).catch(() => {})
})

describe('the local control plane', () => {
  test('has kwok nodes, Ready and schedulable', async () => {
    const nodes = await core.listNode({ labelSelector: 'type=kwok' })
    expect(nodes.items.length).toBeGreaterThan(0)
    for (const node of nodes.items) {
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True')
      expect(node.spec?.unschedulable ?? false).toBe(false)
      expect(node.spec?.taints ?? []).toEqual([])
    }
  })

  test('runs a Deployment to Available, with a Service whose EndpointSlices hold the pods', async () => {
    const deployment: V1Deployment = {
      metadata: { name: 'smoke', labels },
      spec: {
        replicas: 3,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'app',
                image: 'registry.invalid/smoke:1',
                ports: [{ containerPort: 8080 }],
                readinessProbe: { httpGet: { path: '/readyz', port: 8080 } },
              },
            ],
          },
        },
      },
    }
    await apps.createNamespacedDeployment({ namespace, body: deployment })
    await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: 'smoke' },
        spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
      },
    })

    const available = await eventually('the Deployment to be Available', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'smoke', namespace })
      const ok = d.status?.conditions?.find((c) => c.type === 'Available')?.status === 'True'
      return ok && d.status?.readyReplicas === 3 ? d : undefined
    })
    expect(available.status?.availableReplicas).toBe(3)

    const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app=smoke' })
    expect(pods.items).toHaveLength(3)
    for (const pod of pods.items) {
      expect(pod.status?.phase).toBe('Running')
      expect(pod.spec?.nodeName).toMatch(/^kwok-node-/)
      expect(pod.status?.podIP).toBeTruthy()
    }

    const ips = pods.items.map((p) => p.status!.podIP!).sort()
    const endpoints = await eventually('EndpointSlices with the three pods', async () => {
      const slices = await discovery.listNamespacedEndpointSlice({
        namespace,
        labelSelector: 'kubernetes.io/service-name=smoke',
      })
      const addresses = slices.items.flatMap((s) =>
        (s.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses),
      )
      return addresses.length === 3 ? addresses.sort() : undefined
    })
    expect(endpoints).toEqual(ips)
  })

  test('garbage-collects the ReplicaSet and pods of a deleted Deployment', async () => {
    await apps.deleteNamespacedDeployment({ name: 'smoke', namespace, propagationPolicy: 'Background' })
    await eventually('the ReplicaSets and pods to be collected', async () => {
      const [sets, pods] = await Promise.all([
        apps.listNamespacedReplicaSet({ namespace, labelSelector: 'app=smoke' }),
        core.listNamespacedPod({ namespace, labelSelector: 'app=smoke' }),
      ])
      return sets.items.length === 0 && pods.items.length === 0 ? true : undefined
    })
  })

  test('completes a Job', async () => {
    await batch.createNamespacedJob({
      namespace,
      body: {
        metadata: { name: 'once' },
        spec: {
          backoffLimit: 0,
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [{ name: 'once', image: 'registry.invalid/once:1' }],
            },
          },
        },
      },
    })
    const job = await eventually('the Job to complete', async () => {
      const j = await batch.readNamespacedJob({ name: 'once', namespace })
      return j.status?.succeeded === 1 ? j : undefined
    })
    expect(job.status?.conditions?.find((c) => c.type === 'Complete')?.status).toBe('True')
  })

  test('mints ServiceAccount tokens that RBAC judges', async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } })
    const request = await core.createNamespacedServiceAccountToken({
      name: 'reader',
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    })
    const token = request.status?.token
    expect(token).toBeTruthy()

    const cluster = kc.getCurrentCluster()!
    const asReader = new KubeConfig()
    asReader.loadFromOptions({
      clusters: [cluster],
      users: [{ name: 'reader', token: token! }],
      contexts: [{ name: 'reader', cluster: cluster.name, user: 'reader' }],
      currentContext: 'reader',
    })
    const review = await asReader.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} })
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${namespace}:reader`)
    // No role grants it anything: listing pods is forbidden.
    await expect(asReader.makeApiClient(CoreV1Api).listNamespacedPod({ namespace })).rejects.toMatchObject({
      code: 403,
    })
  })
})
