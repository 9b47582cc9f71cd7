import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { machineSearchAttributes } from '../../common/search-attributes';
import { readToolPaths, repoRoot } from '../../common/tools';
import { isListening, isLoopback, startProcess, waitFor, type ManagedProcess } from './processes';

/**
 * Temporal for local mode: reuse a server already at TEMPORAL_ADDRESS; start the CLI's dev server
 * (file-backed SQLite under .data/, UI on port + 1000, search attributes registered) when the
 * address is a loopback one where nothing listens yet.
 */
export async function ensureTemporal(
  address: string,
  namespace: string,
  opts: { dataDir?: string; quiet?: boolean } = {},
): Promise<{ uiUrl?: string; process?: ManagedProcess }> {
  const [host = '127.0.0.1', portText = '7233'] = address.split(':');
  const port = Number(portText);
  if (await isListening(host, port)) {
    await registerSearchAttributes(address, namespace);
    return {};
  }
  if (!isLoopback(host))
    throw new Error(
      `TEMPORAL_ADDRESS=${address}: nothing answers there (a non-local server is not started by npm start)`,
    );
  const dir = resolve(opts.dataDir ?? resolve(repoRoot, '.data'), 'temporal');
  mkdirSync(dir, { recursive: true });
  const uiPort = port + 1000;
  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--db-filename',
    resolve(dir, 'temporal.db'),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
  ];
  for (const key of machineSearchAttributes) args.push('--search-attribute', `${key.name}=Keyword`);
  const proc = startProcess('temporal', readToolPaths().temporalCli, args, { quiet: opts.quiet });
  await waitFor(`the Temporal dev server at ${address}`, () => isListening(host, port), { proc, timeoutMs: 90_000 });
  return { uiUrl: `http://${host}:${uiPort}`, process: proc };
}

/** Idempotent: registers the machine search attributes an existing server lacks. */
export async function registerSearchAttributes(address: string, namespace: string) {
  const connection = await Connection.connect({ address });
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = machineSearchAttributes.filter((k) => !customAttributes?.[k.name]);
    if (missing.length === 0) return;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, 2 /* INDEXED_VALUE_TYPE_KEYWORD */])),
    });
  } finally {
    await connection.close();
  }
}
