import { parseArgs } from 'node:util';
import { checkHealthz, checkOpenApi, checkToken, checkWebhook } from './checks';
import type { CheckResult, SmokeTarget } from './http';
import { checkProvision } from './provision';

export interface SmokeOptions extends SmokeTarget {
  provision?: boolean;
  webhookSecret?: string;
  deadlineSeconds?: number;
  region?: string;
}

export const USAGE = `usage: npm run smoke -- --api <url> [--token <access token>] [--provision] [--webhook-secret <secret>]
  --api             the control plane's public URL, e.g. https://cloud-execution.fly.dev
  --token           a Supabase access token of a smoke user: checks the API accepts it
  --provision       also start a machine for that user (elite), wait for running and the stream's hello, stop it
  --deadline        seconds to wait for running, and for stopped (default 300)
  --region          Fly region for --provision (default: the API's)
  --webhook-secret  the API's WEBHOOK_SECRET: sends a signed no-op billing event`;

/** argv → options; throws a message for the usage line on anything wrong. */
export function parseSmokeArgs(argv: string[]): SmokeOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string' },
      token: { type: 'string' },
      provision: { type: 'boolean' },
      deadline: { type: 'string' },
      region: { type: 'string' },
      'webhook-secret': { type: 'string' },
    },
    strict: true,
  });
  if (!values.api || !/^https?:\/\//.test(values.api)) throw new Error('--api must be the http(s) URL of the API');
  if (values.provision && !values.token) throw new Error('--provision needs --token (the machine is that user’s)');
  const deadline = values.deadline === undefined ? undefined : Number(values.deadline);
  if (deadline !== undefined && !(Number.isInteger(deadline) && deadline > 0))
    throw new Error('--deadline must be a number of seconds');
  return {
    api: values.api,
    token: values.token,
    provision: values.provision,
    deadlineSeconds: deadline,
    region: values.region,
    webhookSecret: values['webhook-secret'],
  };
}

export const line = (r: CheckResult) => `${r.ok ? '✓' : '✗'} ${r.message}`;

/** Runs the checks in order, printing each as it completes; stops early when the API is unreachable. */
export async function runSmoke(o: SmokeOptions, print: (line: string) => void = console.log): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const report = (rs: CheckResult[]) => {
    for (const r of rs) print(line(r));
    results.push(...rs);
  };
  const health = await checkHealthz(o);
  report(health);
  if (health.length === 1 && !health[0]!.ok) return results; // nothing answers: the rest would say the same
  report([await checkOpenApi(o)]);
  if (o.token) {
    const token = await checkToken(o);
    report([token.result]);
    if (o.provision && token.result.ok)
      results.push(
        ...(await checkProvision(o, {
          deadlineSeconds: o.deadlineSeconds,
          stateBefore: token.state,
          region: o.region,
          log: print,
          onResult: (r) => print(line(r)), // as each is known: the waits in between take a while
        })),
      );
  } else print('– no --token: the token and machine checks were not run');
  if (o.webhookSecret) report([await checkWebhook(o, o.webhookSecret)]);
  else print('– no --webhook-secret: the billing webhook was not checked');
  return results;
}
