import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { machineStates, type MachineState } from '../common/machine-states';
import { durationMs } from '../workflows/contract';
import { uptimeRangeProblem } from '../common/uptime-ledger';
import { TIMELINE_MAX_LIMIT } from '../store/timeline';

/** The operator CLI's commands, parsed from argv (pure: `parseCommand` is tested as inputs → outputs). */
export type Command =
  | { name: 'machines'; state?: MachineState; tier?: string; region?: string; json: boolean }
  | { name: 'show'; userId: string; json: boolean }
  | { name: 'stop'; userId: string; reason?: string }
  | { name: 'force-stop'; userId: string; reason: string }
  | { name: 'reconcile'; dryRun: boolean; json: boolean; minAge?: string }
  | { name: 'logs'; userId: string; follow: boolean; lines: number }
  | { name: 'timeline'; userId: string; limit: number; json: boolean }
  | { name: 'uptime'; from?: string; to?: string; userId?: string; json: boolean };

/** One command's shape, by name. */
export type CommandOf<N extends Command['name']> = Extract<Command, { name: N }>;

export type Parsed = { kind: 'command'; command: Command } | { kind: 'help' } | { kind: 'usage'; message: string };

export const USAGE = `Usage: npm run ops -- <command> [options]

Commands:
  machines [--state S] [--tier T] [--region R] [--json]
      every machine: running workflows (Temporal visibility) joined with the cloud_machines rows
  show <userId> [--json]
      one machine: the workflow's status (or the row), its timeline, the Fly machine, billing
  stop <userId> [--reason TEXT]
      the workflow's stop update (requestedBy operator); returns once stopped
  force-stop <userId> --reason TEXT
      terminates the workflow, destroys the user's Fly machines now, records why
  reconcile [--dry-run] [--min-age DURATION] [--json]
      runs reconcileFleet now and prints its report; --dry-run prints the plan without acting
  logs <userId> [--follow] [--lines N]
      the machine's logs (fly-local: its log file; real Fly: the \`fly logs\` command to run)
  timeline <userId> [--limit N] [--json]
      the user's timeline, newest first: transitions, billing events, self-heals, rollouts, operators
  uptime [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--user ID] [--json]
      every user's uptime ledger by month (default: this month), worst first, with SLO credits owed

Options:
  --json       JSON instead of a table
  -h, --help   this text

Configured by the worker's environment (TEMPORAL_*, FLY_API_URL, FLY_API_TOKEN, FLY_APP,
DATABASE_URL or SUPABASE_URL + SUPABASE_SERVICE_KEY; see ops/README.md).
Exit codes: 0 done, 1 failed, 2 usage.`;

type Options = NonNullable<ParseArgsConfig['options']>;
const json: Options = { json: { type: 'boolean' } };
const help: Options = { help: { type: 'boolean', short: 'h' } };

const spec = {
  machines: { options: { ...json, state: { type: 'string' }, tier: { type: 'string' }, region: { type: 'string' } } },
  show: { options: json, user: true },
  stop: { options: { reason: { type: 'string' } }, user: true },
  'force-stop': { options: { reason: { type: 'string' } }, user: true },
  reconcile: { options: { ...json, 'dry-run': { type: 'boolean' }, 'min-age': { type: 'string' } } },
  logs: { options: { follow: { type: 'boolean', short: 'f' }, lines: { type: 'string', short: 'n' } }, user: true },
  timeline: { options: { ...json, limit: { type: 'string', short: 'n' } }, user: true },
  uptime: { options: { ...json, from: { type: 'string' }, to: { type: 'string' }, user: { type: 'string' } } },
} satisfies Record<Command['name'], { options: Options; user?: true }>;

const userIdSchema = z.guid({ message: 'must be a user id (a UUID)' });
const stateSchema = z.enum(machineStates, { message: `must be one of ${machineStates.join(', ')}` });
const reasonSchema = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const linesSchema = z.coerce.number().int().min(1).max(100_000);
const limitSchema = z.coerce.number().int().min(1).max(TIMELINE_MAX_LIMIT);
const dateSchema = z.iso.date({ message: 'must be a UTC date, YYYY-MM-DD' });
const durationSchema = z.string().refine((v) => durationMs(v) !== undefined, 'must be a duration like "10 minutes"');

class Usage extends Error {}

/** Validates one value with zod; a bad one becomes a usage error naming what was wrong. */
function valid<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new Usage(`${what} ${r.error.issues[0]?.message ?? 'is invalid'}`);
  return r.data;
}
const optional = <T>(schema: z.ZodType<T>, value: unknown, what: string) =>
  value === undefined ? undefined : valid(schema, value, what);

const isCommand = (name: string | undefined): name is Command['name'] => !!name && Object.hasOwn(spec, name);

/** argv (after `npm run ops --`) → a command, a request for help, or a usage error. */
export function parseCommand(argv: readonly string[]): Parsed {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') return { kind: 'help' };
  if (!isCommand(name)) return { kind: 'usage', message: `unknown command "${name}"` };
  const { options, ...s } = spec[name];
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...rest], options: { ...options, ...help }, allowPositionals: true, strict: true });
  } catch (err) {
    return { kind: 'usage', message: `${name}: ${(err as Error).message}` };
  }
  const { values: v, positionals } = parsed;
  if (v.help) return { kind: 'help' };
  const wantsUser = 'user' in s;
  try {
    if (positionals.length > (wantsUser ? 1 : 0))
      throw new Usage(`unexpected argument "${positionals[wantsUser ? 1 : 0]}"`);
    if (wantsUser && positionals.length === 0) throw new Usage('needs a <userId>');
    const userId = wantsUser ? valid(userIdSchema, positionals[0], '<userId>') : '';
    return { kind: 'command', command: build(name, v, userId) };
  } catch (err) {
    if (err instanceof Usage) return { kind: 'usage', message: `${name}: ${err.message}` };
    throw err;
  }
}

function build(name: Command['name'], v: Record<string, unknown>, userId: string): Command {
  const flag = (k: string) => v[k] === true;
  switch (name) {
    case 'machines':
      return {
        name,
        state: optional(stateSchema, v.state, '--state'),
        tier: optional(reasonSchema, v.tier, '--tier'),
        region: optional(reasonSchema, v.region, '--region'),
        json: flag('json'),
      };
    case 'show':
      return { name, userId, json: flag('json') };
    case 'stop':
      return { name, userId, reason: optional(reasonSchema, v.reason, '--reason') };
    case 'force-stop':
      if (v.reason === undefined) throw new Usage('needs --reason (why, for the audit trail)');
      return { name, userId, reason: valid(reasonSchema, v.reason, '--reason') };
    case 'reconcile':
      return {
        name,
        dryRun: flag('dry-run'),
        json: flag('json'),
        minAge: optional(durationSchema, v['min-age'], '--min-age'),
      };
    case 'logs':
      return { name, userId, follow: flag('follow'), lines: optional(linesSchema, v.lines, '--lines') ?? 100 };
    case 'timeline':
      return { name, userId, limit: optional(limitSchema, v.limit, '--limit') ?? 50, json: flag('json') };
    case 'uptime': {
      const from = optional(dateSchema, v.from, '--from');
      const to = optional(dateSchema, v.to, '--to');
      const problem = from && to ? uptimeRangeProblem({ from, to }) : null;
      if (problem) throw new Usage(`--${problem.param}: ${problem.message}`);
      return { name, from, to, userId: optional(userIdSchema, v.user, '--user'), json: flag('json') };
    }
  }
}
