import WebSocket from 'ws';
import { base, call, detailOf, fail, pass, sleep, type CheckResult, type SmokeTarget } from './http';

/**
 * `--provision`: a real machine for the smoke user, end to end. POST /v1/machines, wait for `running`
 * under a deadline, open the stream through the API's gateway and wait for the machine's `hello`, then
 * stop it and wait for `stopped`. A machine that was already running is used and left running.
 */

export interface ProvisionOptions {
  /** Overall deadline for `running`, and again for `stopped`; default 300 s. */
  deadlineSeconds?: number;
  /** The state found before (checkToken): `running` means the user's own machine, which is not stopped. */
  stateBefore?: string;
  region?: string;
  /** Between status polls; default 2 s (the API allows 60 requests a minute per user). */
  pollMs?: number;
  /** Progress lines (states seen while waiting). */
  log?: (line: string) => void;
  /** Each result as soon as it is known (so it prints before the next wait). */
  onResult?: (result: CheckResult) => void;
}

interface Status {
  state?: string;
  reason?: string | null;
  machineId?: string | null;
  workflowId?: string;
}

async function waitForState(
  t: SmokeTarget,
  want: string,
  o: ProvisionOptions,
): Promise<{ status?: Status; seconds: number; problem?: string }> {
  const started = Date.now();
  const deadline = started + (o.deadlineSeconds ?? 300) * 1000;
  let last: Status | undefined;
  for (;;) {
    const a = await call(t, 'GET', '/v1/machines/me', { token: t.token });
    const seconds = Math.round((Date.now() - started) / 1000);
    if (a.status === 200) {
      const s = a.json as Status;
      if (s.state !== last?.state)
        o.log?.(`  … ${s.state ?? '?'}${s.reason ? ` (${s.reason})` : ''} after ${seconds} s`);
      last = s;
      if (s.state === want) return { status: s, seconds };
      const terminal = want === 'running' ? ['error', 'stopped'] : ['error'];
      if (s.state && terminal.includes(s.state)) return { status: s, seconds, problem: `it went ${s.state}` };
    } else if (a.status !== 429) {
      return { status: last, seconds, problem: `GET /v1/machines/me answered HTTP ${a.status}: ${detailOf(a)}` };
    }
    if (Date.now() > deadline) return { status: last, seconds, problem: `not ${want} after ${seconds} s` };
    await sleep(o.pollMs ?? 2000);
  }
}

/** Opens the stream with the bearer subprotocol and resolves with the first `hello`, or why none came. */
export function awaitHello(
  t: SmokeTarget,
  timeoutMs = 30_000,
): Promise<{ hello?: Record<string, unknown>; problem?: string }> {
  const url = `${base(t).replace(/^http/, 'ws')}/v1/machines/me/stream`;
  return new Promise((resolve) => {
    const ws = new WebSocket(url, ['bearer', t.token ?? '']);
    let done = false;
    const finish = (r: { hello?: Record<string, unknown>; problem?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.removeAllListeners('close');
      ws.on('error', () => undefined);
      ws.close(1000, 'smoke test done');
      resolve(r);
    };
    const timer = setTimeout(() => finish({ problem: `no hello within ${timeoutMs / 1000} s` }), timeoutMs);
    ws.on('message', (data) => {
      try {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        if (m.type === 'hello') finish({ hello: m });
      } catch {
        // not JSON: not the hello we wait for
      }
    });
    ws.on('unexpected-response', (_req, res) =>
      finish({ problem: `the upgrade was refused with HTTP ${res.statusCode}` }),
    );
    ws.on('close', (code, reason) => finish({ problem: `the stream closed with ${code} ${reason.toString()}` }));
    ws.on('error', (err) => finish({ problem: err.message }));
  });
}

const flyHint =
  'look at the workflow machine-<user id> in the Temporal UI (its reason and last activity); common causes: ' +
  'FLY_API_TOKEN not a deploy token of FLY_APP, FLY_MACHINE_IMAGE not pushed or not pullable, no capacity in the region';

export async function checkProvision(t: SmokeTarget, o: ProvisionOptions = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (r: CheckResult) => {
    results.push(r);
    o.onResult?.(r);
  };
  const ours = o.stateBefore !== 'running';
  const body = JSON.stringify(o.region ? { region: o.region } : {});
  const p = await call(t, 'POST', '/v1/machines', { token: t.token, body });
  if (p.status !== 202) {
    const why: Record<number, string> = {
      403: "the smoke user is not entitled to a machine (only the elite tier is): set the user's profiles.subscription_tier to 'elite'",
      402: "the smoke user's payment is overdue past its grace period",
      409: 'the machine is still stopping: wait a minute and run again',
      429: `too soon (API_PROVISION_COOLDOWN or the rate limit): try again in ${p.headers.get('retry-after') ?? 'a few'} s`,
    };
    add(
      fail(
        'provision',
        `POST /v1/machines answered HTTP ${p.status} (${detailOf(p)}): ${why[p.status] ?? 'see the API log'}`,
      ),
    );
    return results;
  }
  add(
    pass('provision', `POST /v1/machines accepted: workflow ${String(p.json?.workflowId)}, ${String(p.json?.state)}`),
  );

  const up = await waitForState(t, 'running', o);
  if (up.problem) {
    const reason = up.status?.reason ? ` (reason: ${up.status.reason})` : '';
    add(fail('running', `the machine is not running: ${up.problem}${reason}; ${flyHint}`));
    return results;
  }
  add(pass('running', `machine ${String(up.status?.machineId)} is running after ${up.seconds} s`));

  const stream = await awaitHello(t);
  add(
    stream.hello
      ? pass('stream', `the stream through the API relayed the machine's hello (user ${String(stream.hello.userId)})`)
      : fail(
          'stream',
          `no hello on ${base(t).replace(/^http/, 'ws')}/v1/machines/me/stream: ${stream.problem}. The API reaches ` +
            "machines over Fly's private network: the control plane app and FLY_APP must be in the same Fly organisation",
        ),
  );

  if (!ours) {
    add(pass('stop', 'the machine was running before the smoke test: left running'));
    return results;
  }
  const s = await call(t, 'POST', '/v1/machines/me/stop', { token: t.token });
  if (s.status !== 202) {
    add(fail('stop', `POST /v1/machines/me/stop answered HTTP ${s.status}: ${detailOf(s)}`));
    return results;
  }
  const down = await waitForState(t, 'stopped', o);
  add(
    down.problem
      ? fail('stop', `the machine did not stop: ${down.problem}; ${flyHint}`)
      : pass('stop', `stopped and destroyed after ${down.seconds} s`),
  );
  return results;
}
