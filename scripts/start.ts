import { ConfigError } from '../common/config';
import { startLocalStack, type LocalStack } from '../dev/stack/local-stack';

/** `npm start`: the whole local stack on one machine (docs/technical-description.md §7); Ctrl-C stops everything started here. */
const log = (msg: string) => console.log(`[start] ${msg}`);
let stack: LocalStack | undefined;
let stopping = false;

async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  log('stopping everything started here…');
  await stack?.stop();
  log('stopped');
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

startLocalStack({ log })
  .then((s) => {
    stack = s;
    const line = '─'.repeat(72);
    console.log(`\n${line}`);
    log('Cloud Execution is running');
    log(`  dashboard:    ${s.dashboardUrl}`);
    log(`  Temporal UI:  ${s.temporalUiUrl ?? `(the server at ${s.temporalAddress} was already running)`}`);
    log(`  API:          ${s.apiUrl}   (OpenAPI: ${s.apiUrl}/openapi.json)`);
    log(`  database:     ${s.databaseUrl}`);
    log(`  Fly API:      ${s.flyApiUrl}`);
    log(`  Binance:      ${s.binanceWsUrl}`);
    log('');
    log('  sign in on the dashboard with "Dev sign-in (local mode only)", or paste a token (Advanced):');
    log(`  elite user ${s.users.elite}:`);
    console.log(`\n${s.tokens.elite}\n`);
    log(`  free user ${s.users.free} (gets 403 on start):`);
    console.log(`\n${s.tokens.free}\n`);
    log('Ctrl-C stops everything started here; the next start keeps the state in .data/.');
    console.log(line);
  })
  .catch((err: unknown) => {
    console.error(
      err instanceof ConfigError ? err.message : `[start] failed: ${err instanceof Error ? err.message : String(err)}`,
    );
    void shutdown(1);
  });
