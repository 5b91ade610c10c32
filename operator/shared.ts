/**
 * What every reconciler shares: the API group, the one field manager, owner references, status conditions,
 * Secret-backed env, the hardened pod and container security contexts, probes and resource defaults. Pure.
 */
import type { KubernetesObject, V1EnvVar } from '@kubernetes/client-node'

export const GROUP = 'bourse.dev'
export const VERSION = 'v1alpha1'
export const API_VERSION = `${GROUP}/${VERSION}`
export const FIELD_MANAGER = 'bourse-operator'
export const DEFAULT_IMAGE = 'ghcr.io/bourse/bourse:0.1.0'
export const CONFIG_HASH = 'bourse.dev/config-hash'

export interface SecretRef {
  name: string
  key?: string
}

export interface Quantities {
  requests?: Record<string, string | number>
  limits?: Record<string, string | number>
}

export interface Condition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  observedGeneration?: number
  lastTransitionTime: string
  reason: string
  message: string
}

export type Cond = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>

/**
 * The Ready, Progressing and Degraded conditions every bourse.dev resource reports, in the three shapes they
 * take. Failed: not Ready, not Progressing, Degraded, all three for the same reason.
 */
export function failedConditions(reason: string, message: string): Cond[] {
  return [
    { type: 'Ready', status: 'False', reason, message },
    { type: 'Progressing', status: 'False', reason, message },
    { type: 'Degraded', status: 'True', reason, message },
  ]
}

/** On its way: not Ready yet (`readyReason`), Progressing (`reason`), not Degraded. */
export function progressingConditions(readyReason: string, reason: string, message: string): Cond[] {
  return [
    { type: 'Ready', status: 'False', reason: readyReason, message },
    { type: 'Progressing', status: 'True', reason, message },
    AS_EXPECTED,
  ]
}

/** Rolled out: Ready as given (a halted market is rolled out but not Ready), not Progressing, not Degraded. */
export function rolledOutConditions(ready: Omit<Cond, 'type'>, rolledOut: string): Cond[] {
  return [
    { type: 'Ready', ...ready },
    { type: 'Progressing', status: 'False', reason: 'RolledOut', message: rolledOut },
    AS_EXPECTED,
  ]
}

export const AS_EXPECTED: Cond = { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' }

/** A controller owner reference to a bourse.dev object (its kind taken from the object). */
export function ownerReference(o: KubernetesObject) {
  return {
    apiVersion: API_VERSION,
    kind: o.kind!,
    name: o.metadata!.name!,
    uid: o.metadata!.uid!,
    controller: true,
    blockOwnerDeletion: true,
  }
}

/** Sets a condition, keeping lastTransitionTime when its status did not change (meta.SetStatusCondition). */
export function setCondition(previous: Condition[] | undefined, c: Cond, generation: number, now: string) {
  const old = previous?.find((p) => p.type === c.type)
  return {
    ...c,
    observedGeneration: generation,
    lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now,
  }
}

/** An env var from a Secret key (`url` unless the ref names another). */
export const secretEnv = (name: string, ref: SecretRef, defaultKey = 'url'): V1EnvVar => ({
  name,
  valueFrom: { secretKeyRef: { name: ref.name, key: ref.key ?? defaultKey } },
})

/** Requests and limits: the resource's, each side filled from the defaults where it says nothing. */
export function mergeResources(
  r: Quantities | undefined,
  defaults: Required<Quantities>,
): { requests: Record<string, string>; limits: Record<string, string> } {
  // Quantities may be integers on the wire (int-or-string); the client's types say string only.
  return {
    requests: { ...defaults.requests, ...r?.requests } as Record<string, string>,
    limits: { ...defaults.limits, ...r?.limits } as Record<string, string>,
  }
}

export const prometheusAnnotations = (port: number) => ({
  'prometheus.io/scrape': 'true',
  'prometheus.io/port': String(port),
  'prometheus.io/path': '/metrics',
})

export const httpProbe = (path: string, port: string | number = 'http') => ({
  httpGet: { path, port },
  periodSeconds: 10,
  timeoutSeconds: 2,
  failureThreshold: 3,
})

/** Liveness on /healthz, readiness on /readyz, a patient start-up probe: what every Bourse process serves. */
export const standardProbes = () => ({
  livenessProbe: httpProbe('/healthz'),
  readinessProbe: httpProbe('/readyz'),
  startupProbe: { ...httpProbe('/healthz'), failureThreshold: 30, periodSeconds: 2 },
})

export const podSecurityContext = () => ({
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  fsGroup: 65532,
  seccompProfile: { type: 'RuntimeDefault' },
})

export const containerSecurityContext = () => ({
  runAsNonRoot: true,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
})

/** The writable scratch space a read-only root filesystem needs. */
export const tmpVolume = () => ({ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } })
export const tmpMount = () => ({ name: 'tmp', mountPath: '/tmp' })
