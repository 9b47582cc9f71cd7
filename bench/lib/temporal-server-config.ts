/**
 * The Temporal server's static config (v1.32 `--config-file` format, as the server's own
 * config/development-postgres12.yaml) and its dynamic config, as text. Pure: the launcher
 * (temporal-server.ts) picks the ports and writes the files.
 */
export interface ServerPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  metrics: number;
}

export interface ServerSettings {
  postgresPort: number;
  ports: ServerPorts;
  /** Fixed for the life of a cluster: each shard owns a slice of the workflows and its own task queues. */
  shards: number;
  /** Connections per service and store (every service in the process has its own pools). */
  maxConns: number;
  dynamicConfigPath: string;
  /** Prometheus metrics (as a production server has them); off, the server records none. */
  metrics: boolean;
  /** Go's /debug/pprof on this port (BENCH_TEMPORAL_PPROF), for a CPU profile of the server during a run. */
  pprofPort?: number;
}

const store = (db: string, s: ServerSettings, maxConns: number) => `
      sql:
        pluginName: "postgres12"
        databaseName: "${db}"
        connectAddr: "127.0.0.1:${s.postgresPort}"
        connectProtocol: "tcp"
        user: "postgres"
        password: ""
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: "1h"`;

const service = (grpc: number, membership: number, http?: number) => `
    rpc:
      grpcPort: ${grpc}
      membershipPort: ${membership}
      bindOnLocalHost: true${http ? `\n      httpPort: ${http}` : ''}`;

export function serverConfigYaml(s: ServerSettings): string {
  const p = s.ports;
  return `# Written by bench/lib/temporal-server.ts for one benchmark run.
log:
  stdout: true
  level: warn

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: ${s.shards}
  datastores:
    postgres-default:${store('temporal', s, s.maxConns)}
    postgres-visibility:${store('temporal_visibility', s, Math.max(2, Math.ceil(s.maxConns / 2)))}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
${s.pprofPort ? `  pprof:\n    port: ${s.pprofPort}\n` : ''}${
    s.metrics
      ? `  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: "127.0.0.1:${p.metrics}"
`
      : ''
  }
services:
  frontend:${service(p.frontend, p.frontendMembership, p.frontendHttp)}
  history:${service(p.history, p.historyMembership)}
  matching:${service(p.matching, p.matchingMembership)}
  worker:${service(p.worker, p.workerMembership)}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:${p.frontend}"

dcRedirectionPolicy:
  policy: "noop"

dynamicConfigClient:
  filepath: "${s.dynamicConfigPath}"
  pollInterval: "10s"
`;
}

/** Dynamic config: what the product uses (updates), and limits lifted so a 2-core box, not a quota, bounds the run. */
export function dynamicConfigYaml(opts: { partitions?: number; forceSearchAttributesRefresh: boolean }): string {
  const v = (value: string | number | boolean) => `\n  - value: ${String(value)}`;
  const entries: Record<string, string | number | boolean> = {
    // The machine workflow's `stop` and `rollImage` updates.
    'frontend.enableUpdateWorkflowExecution': true,
    'frontend.enableUpdateWorkflowExecutionAsyncAccepted': true,
    // The dev server turns this on (attributes usable the instant they are added) at the price of a
    // cluster-metadata read on every search-attribute lookup. A production server leaves it off; the
    // launcher turns it on only for the first boot, where the attributes are registered.
    'system.forceSearchAttributesCacheRefreshOnRead': opts.forceSearchAttributesRefresh,
    // Per-instance rate limits (defaults 2,400 rps): 1,000 stops in 10 s is ~1,500 requests a second.
    'frontend.rps': 20000,
    'frontend.namespaceRPS': 20000,
    'history.rps': 20000,
    'matching.rps': 20000,
    'limit.maxIDLength': 255,
  };
  if (opts.partitions) {
    entries['matching.numTaskqueueReadPartitions'] = opts.partitions;
    entries['matching.numTaskqueueWritePartitions'] = opts.partitions;
  }
  return Object.entries(entries)
    .map(([k, value]) => `${k}:${v(value)}`)
    .join('\n')
    .concat('\n');
}
