/**
 * Alerts as Kubernetes Events on the cron's own Pod, when running in a cluster (the service account's
 * token and CA, POD_NAME and POD_NAMESPACE from the downward API). Outside a cluster there is none: the
 * log and the metrics carry the alert.
 */
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import type { Alert } from './jobs.ts'

const SA = '/var/run/secrets/kubernetes.io/serviceaccount'

export function kubernetesEventAlert(env: NodeJS.ProcessEnv = process.env): Alert | undefined {
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT ?? '443'
  let token: string
  let ca: Buffer
  let namespace: string
  try {
    token = readFileSync(`${SA}/token`, 'utf8').trim()
    ca = readFileSync(`${SA}/ca.crt`)
    namespace = env.POD_NAMESPACE ?? readFileSync(`${SA}/namespace`, 'utf8').trim()
  } catch {
    return undefined
  }
  if (host === undefined) return undefined
  const pod = env.POD_NAME ?? env.HOSTNAME ?? 'bourse-cron'
  return async ({ reason, message }) => {
    const now = new Date().toISOString()
    const body = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${pod}.`, namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod, namespace },
      reason,
      message,
      type: 'Warning',
      source: { component: 'bourse-cron' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    })
    await new Promise<void>((resolve, reject) => {
      const req = request(
        {
          host,
          port,
          method: 'POST',
          path: `/api/v1/namespaces/${namespace}/events`,
          ca,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.resume()
          res.on('end', () =>
            (res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`event refused: ${res.statusCode}`)),
          )
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  }
}
