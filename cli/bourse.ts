#!/usr/bin/env node
/**
 * One image, one CLI: `bourse <component> [options]`. Each component lives in services/<name>/ (the
 * operator in operator/) and exports `main(args)`; only components that exist are listed here.
 */
const components: Record<
  string,
  { summary: string; load: () => Promise<{ main(args: string[]): Promise<void> }> }
> = {
  cron: {
    summary: 'scheduled work with a single leader (sweeps, reconciliation, cleanup, statistics)',
    load: () => import('../services/cron/main.ts'),
  },
  dex: {
    summary: 'DEX order indexer and its API (the Linkora order system)',
    load: () => import('../services/dex/main.ts'),
  },
  dev: {
    summary: 'the whole exchange in one process on embedded stores',
    load: () => import('../services/dev/dev.ts'),
  },
  engine: {
    summary: "one market's matching engine: bourse engine --market BTCUSDT",
    load: () => import('../services/engine/main.ts'),
  },
  gateway: { summary: 'the REST API (Binance Spot v3)', load: () => import('../services/gateway/main.ts') },
  handler: {
    summary: 'market data from trades (k-lines, tickers); --user-events: the user data streams (one replica)',
    load: () => import('../services/handler/main.ts'),
  },
  operator: {
    summary: 'the Kubernetes operator (Market, leader-elected)',
    load: () => import('../operator/main.ts'),
  },
  syncer: {
    summary: "one Wallet's deposit syncer: bourse syncer --wallet eth",
    load: () => import('../services/syncer/main.ts'),
  },
  ws: { summary: 'WebSocket market streams (Binance)', load: () => import('../services/ws/main.ts') },
  migrate: {
    summary: 'apply the database migrations (the migration Job)',
    load: () => import('../services/migrate/migrate.ts'),
  },
}

function usage(): string {
  const width = Math.max(...Object.keys(components).map((name) => name.length))
  const lines = Object.entries(components).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  return ['usage: bourse <component> [options]', '', 'components:', ...lines].join('\n')
}

const [name, ...args] = process.argv.slice(2)
const component = name === undefined ? undefined : components[name]
if (component === undefined) {
  console.error(
    name === undefined || name === 'help' || name === '--help'
      ? usage()
      : `bourse: unknown component '${name}'\n\n${usage()}`,
  )
  process.exit(name === undefined || name === 'help' || name === '--help' ? 0 : 2)
}
await (await component.load()).main(args)
