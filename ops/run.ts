import { forceStop, reconcile, stop } from './actions';
import { parseCommand, USAGE, type Command, type Parsed } from './args';
import { logs } from './logs';
import { timeline, uptime } from './history';
import { machines, show } from './commands';
import { describeError, type OpsDeps } from './context';

export { OpsError, type OpsDeps } from './context';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

async function dispatch(c: Command, deps: OpsDeps): Promise<void> {
  switch (c.name) {
    case 'machines':
      return machines(c, deps);
    case 'show':
      return show(c, deps);
    case 'stop':
      return stop(c, deps);
    case 'force-stop':
      return forceStop(c, deps);
    case 'reconcile':
      return reconcile(c, deps);
    case 'logs':
      return logs(c, deps);
    case 'timeline':
      return timeline(c, deps);
    case 'uptime':
      return uptime(c, deps);
  }
}

/** Runs one command line (argv after `npm run ops --`) and returns its exit code: 0 done, 1 failed, 2 usage. */
export async function runOps(argv: readonly string[], deps: OpsDeps): Promise<number> {
  const parsed = parseCommand(argv);
  if (parsed.kind !== 'command') return printUsage(parsed, deps);
  try {
    await dispatch(parsed.command, deps);
    return EXIT.ok;
  } catch (err) {
    deps.err(`ops ${parsed.command.name}: ${describeError(err)}\n`);
    return EXIT.failed;
  }
}

/** Help (exit 0) or a usage error with the usage text (exit 2): nothing to connect to for either. */
export function printUsage(parsed: Exclude<Parsed, { kind: 'command' }>, io: Pick<OpsDeps, 'out' | 'err'>): number {
  if (parsed.kind === 'help') {
    io.out(`${USAGE}\n`);
    return EXIT.ok;
  }
  io.err(`ops: ${parsed.message}\n\n${USAGE}\n`);
  return EXIT.usage;
}
