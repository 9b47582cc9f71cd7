import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createApiStack } from '../api/test-support/api-stack';
import globalSetup from '../test/global-setup';
import globalTeardown from '../test/global-teardown';
import { quietTemporalLogs } from '../test/temporal';

/** A CLI's own output (stdout), not a log line. */
const say = (line: string) => process.stdout.write(`${line}\n`);
/**
 * `npm run fuzz`: schemathesis against the running API's /openapi.json. Starts the real stack (the
 * API tests' one: Temporal dev server, Postgres, fly-local, worker, API), mints an elite user's
 * token, and runs every phase with the checks "no 5xx" and "responses conform to the spec".
 * Knobs: FUZZ_MAX_EXAMPLES (per operation, default 200), FUZZ_SEED, FUZZ_CHECKS (default below).
 */
const VENV = resolve(__dirname, '..', '.tools', 'fuzz-venv');
const ST = join(VENV, 'bin', 'schemathesis');
const CHECKS =
  'not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance';

function ensureSchemathesis() {
  if (existsSync(ST)) {
    say(`[fuzz] schemathesis: ${ST} (cached)`);
    return;
  }
  say(`[fuzz] schemathesis missing: creating a venv in ${VENV} (python3 -m venv) and running pip install schemathesis`);
  for (const [cmd, args] of [
    ['python3', ['-m', 'venv', VENV]],
    [join(VENV, 'bin', 'pip'), ['install', '--quiet', 'schemathesis']],
  ] as const) {
    const r = spawnSync(cmd, [...args], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`[fuzz] ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
  }
}

/** The part of schemathesis' ndjson `ScenarioFinished` event read here. */
interface Recorder {
  label?: string;
  cases?: Record<string, unknown>;
  checks?: Record<
    string,
    {
      name: string;
      status: string;
      failure_info?: { failure?: { operation?: string; title?: string; message?: string } };
    }[]
  >;
}

export interface FuzzOutcome {
  exitCode: number;
  cases: number;
  failures: string[];
}

/** Runs schemathesis against `baseUrl` with `token` and reads the case count from its ndjson events. */
export async function runSchemathesis(opts: {
  baseUrl: string;
  token: string;
  maxExamples: number;
  seed: number;
  checks?: string;
  maxTimeSeconds?: number;
}): Promise<FuzzOutcome> {
  ensureSchemathesis();
  const reportDir = mkdtempSync(join(tmpdir(), 'ce-fuzz-'));
  const ndjson = join(reportDir, 'events.ndjson');
  const args = [
    'run',
    `${opts.baseUrl}/openapi.json`,
    '--url',
    opts.baseUrl,
    '--checks',
    opts.checks ?? CHECKS,
    '--header',
    `Authorization: Bearer ${opts.token}`,
    '--max-examples',
    String(opts.maxExamples),
    '--seed',
    String(opts.seed),
    '--workers',
    '2',
    '--request-timeout',
    '20',
    '--no-color',
    // No example database or crash cache in the working tree: every run starts from the seed.
    '--generation-database',
    'none',
    '--report',
    'ndjson',
    '--report-ndjson-path',
    ndjson,
    ...(opts.maxTimeSeconds ? ['--max-time', String(opts.maxTimeSeconds)] : []),
  ];
  say(`[fuzz] ${ST} ${args.join(' ').replace(opts.token, '<elite token>')}`);
  const exitCode = await new Promise<number>((done) => {
    const child = spawn(ST, args, {
      cwd: reportDir,
      stdio: 'inherit',
      env: { ...process.env, SCHEMATHESIS_TELEMETRY: 'false' },
    });
    child.on('exit', (code) => done(code ?? 1));
  });
  let cases = 0;
  const failures: string[] = [];
  if (existsSync(ndjson)) {
    for (const line of readFileSync(ndjson, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const event = JSON.parse(line) as Record<string, Record<string, unknown>>;
      const scenario = event.ScenarioFinished;
      const recorder = scenario?.recorder as Recorder | undefined;
      if (recorder?.cases) cases += Object.keys(recorder.cases).length;
      for (const checks of Object.values(recorder?.checks ?? {}))
        for (const c of checks) {
          const f = c.failure_info?.failure;
          if (c.status.toLowerCase() === 'failure')
            failures.push(
              `${f?.operation ?? recorder?.label ?? '?'}: ${c.name}: ${f?.title ?? ''} (${(f?.message ?? '').replace(/\n/g, '; ')})`,
            );
        }
    }
  }
  return { exitCode, cases, failures: [...new Set(failures)] };
}

async function main() {
  const maxExamples = Number(process.env.FUZZ_MAX_EXAMPLES ?? 200);
  const seed = Number(process.env.FUZZ_SEED ?? 20261127);
  quietTemporalLogs();
  await globalSetup();
  // Fuzzing sends thousands of requests as one user: lift the per-user rate limit so answers are about the input.
  const api = await createApiStack({ env: { API_RATE_LIMIT_MAX: '1000000' } });
  try {
    const userId = await api.createUser('elite');
    const token = await api.token(userId, { ttlSeconds: 3 * 3600 });
    say(`[fuzz] API ${api.url} (elite user ${userId}); seed ${seed}, up to ${maxExamples} cases per operation`);
    const outcome = await runSchemathesis({
      baseUrl: api.url,
      token,
      maxExamples,
      seed,
      checks: process.env.FUZZ_CHECKS,
    });
    say(
      `\n[fuzz] summary: ${outcome.cases} cases, ${outcome.failures.length} distinct failures, schemathesis exit ${outcome.exitCode}`,
    );
    for (const f of outcome.failures) say(`[fuzz]   - ${f}`);
    process.exitCode = outcome.exitCode === 0 && outcome.cases >= 1000 ? 0 : 1;
    if (outcome.cases < 1000) say('[fuzz] fewer than 1,000 cases: raise FUZZ_MAX_EXAMPLES');
  } finally {
    await api.close();
    await globalTeardown();
  }
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
