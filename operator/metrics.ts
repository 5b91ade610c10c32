/**
 * The operator's metrics under controller-runtime's names (pkg/internal/controller/metrics, pkg/metrics/
 * workqueue.go, leader election), so dashboards written for Go operators work unchanged.
 */
import { Counter, Gauge, Histogram, type Registry } from '../lib/metrics.ts'

export const RESULTS = ['success', 'error', 'requeue', 'requeue_after'] as const
export type ReconcileResultLabel = (typeof RESULTS)[number]

export interface OperatorMetrics {
  reconcileTotal: Counter<'controller' | 'result'>
  reconcileErrors: Counter<'controller'>
  reconcileTime: Histogram<'controller'>
  activeWorkers: Gauge<'controller'>
  maxConcurrent: Gauge<'controller'>
  workqueueDepth: Gauge<'name'>
  workqueueAdds: Counter<'name'>
  workqueueRetries: Counter<'name'>
  workqueueQueueDuration: Histogram<'name'>
  workqueueWorkDuration: Histogram<'name'>
  leaderStatus: Gauge<'name'>
  leaderSlowpath: Counter<'name'>
}

const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export function operatorMetrics(registry: Registry): OperatorMetrics {
  const registers = [registry]
  return {
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets,
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    }),
    maxConcurrent: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    }),
    workqueueDepth: new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name'],
      registers,
    }),
    workqueueAdds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name'],
      registers,
    }),
    workqueueRetries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name'],
      registers,
    }),
    workqueueQueueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets,
      registers,
    }),
    workqueueWorkDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name'],
      buckets,
      registers,
    }),
    leaderStatus: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'],
      registers,
    }),
    leaderSlowpath: new Counter({
      name: 'leader_election_slowpath_total',
      help: 'Total number of slow path exercised in renewing leader leases',
      labelNames: ['name'],
      registers,
    }),
  }
}

/** Pre-initialises a controller's series to 0, as controller-runtime does. */
export function initController(metrics: OperatorMetrics, controller: string, workers: number): void {
  for (const result of RESULTS) metrics.reconcileTotal.inc({ controller, result }, 0)
  metrics.reconcileErrors.inc({ controller }, 0)
  metrics.activeWorkers.set({ controller }, 0)
  metrics.maxConcurrent.set({ controller }, workers)
  metrics.workqueueDepth.set({ name: controller }, 0)
  metrics.workqueueAdds.inc({ name: controller }, 0)
  metrics.workqueueRetries.inc({ name: controller }, 0)
}
