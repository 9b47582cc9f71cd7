import { ConfigError } from '../common/config';
import { parseCommand } from './args';
import { loadOpsEnv, openOps } from './connect';
import { describeError } from './context';
import { EXIT, printUsage, runOps } from './run';

/** `npm run ops -- <command>`: the operator CLI (ops/README.md). Usage errors exit 2 before connecting anywhere. */
const out = (text: string) => void process.stdout.write(text);
const err = (text: string) => void process.stderr.write(text);

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv);
  if (parsed.kind !== 'command') return printUsage(parsed, { out, err });
  let ops: Awaited<ReturnType<typeof openOps>>;
  try {
    ops = await openOps(loadOpsEnv(), { out, err, signal: onInterrupt() });
  } catch (e) {
    err(`ops: ${e instanceof ConfigError ? e.message : describeError(e)}\n`);
    return EXIT.failed;
  }
  try {
    return await runOps(argv, ops);
  } finally {
    await ops.close();
  }
}

/** Ctrl-C ends `logs --follow` cleanly; a second one exits at once. */
function onInterrupt(): AbortSignal {
  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  });
  return controller.signal;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Every handle is closed; should a library keep one open, do not hang on it.
    setTimeout(() => process.exit(code), 2_000).unref();
  },
  (e: unknown) => {
    err(`ops: ${describeError(e)}\n`);
    process.exit(EXIT.failed);
  },
);
