import WebSocket from 'ws';
import type { ApiStack } from '../../api/test-support/api-stack';

/*
 * What every group of abuse cases shares: the case record, the two users the cases are run as, the
 * helpers that send a request and record the answer, and the markdown table the answers make.
 */

export interface AbuseCase {
  group: 'token' | 'webhook' | 'billing' | 'stream' | 'ops' | 'machine';
  name: string;
  request: string;
  expected: string;
  observed: string;
}

/**
 * The users the cases run as, and how a case is recorded. User A has a running machine; B is another
 * elite user without one, so "someone else's machine" is A's as B tries to reach it.
 */
export interface AbuseContext {
  api: ApiStack;
  a: string;
  b: string;
  tokenA: string;
  tokenB: string;
  statusA: Awaited<ReturnType<ApiStack['waitForStatus']>>;
  cases: AbuseCase[];
  add(group: AbuseCase['group'], name: string, request: string, expected: string, observed: string): void;
  /** An API call, and its answer as the table shows it: the status code and the problem's detail. */
  status(...args: Parameters<ApiStack['call']>): Promise<{ res: Awaited<ReturnType<ApiStack['call']>>; text: string }>;
}

/** Creates users A and B and provisions A's machine (running before any case is tried). */
export async function abuseContext(api: ApiStack): Promise<AbuseContext> {
  const a = await api.createUser('elite');
  const b = await api.createUser('elite');
  const tokenA = await api.token(a);
  const tokenB = await api.token(b);
  const provision = await api.call('POST', '/v1/machines', { token: tokenA });
  if (provision.status !== 202)
    throw new Error(`could not provision user A: HTTP ${provision.status} ${provision.text}`);
  const statusA = await api.waitForStatus(tokenA, (s) => s.state === 'running', 90_000);

  const cases: AbuseCase[] = [];
  const add = (group: AbuseCase['group'], name: string, request: string, expected: string, observed: string) =>
    cases.push({ group, name, request, expected, observed });
  const status = async (...args: Parameters<ApiStack['call']>) => {
    const res = await api.call(...args);
    const detail = typeof res.json?.detail === 'string' ? ` (${res.json.detail})` : '';
    return { res, text: `${res.status}${detail}` };
  };

  return { api, a, b, tokenA, tokenB, statusA, cases, add, status };
}

/** How a WebSocket attempt ended: an HTTP status before the upgrade, or a close code after it. */
export function streamAttempt(url: string, o: { protocols?: string[]; headers?: Record<string, string> }) {
  return new Promise<string>((resolve) => {
    const ws = new WebSocket(url, o.protocols ?? [], { headers: o.headers });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('no answer in 15 s');
    }, 15_000);
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve(`HTTP ${res.statusCode}`);
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => undefined);
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve(`close ${code} ${reason.toString()}`.trim());
    });
  });
}

/** Whether the observed answer is the expected one (status codes compare by their code; the rest by prefix). */
export const answersAsExpected = (c: AbuseCase) =>
  /^\d{3}$/.test(c.expected) ? c.observed.split(' ')[0] === c.expected : c.observed.startsWith(c.expected);

export function abuseTable(cases: AbuseCase[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| kind | case | request | expected | observed | ok |',
    '| --- | --- | --- | --- | --- | --- |',
    ...cases.map(
      (c) =>
        `| ${c.group} | ${esc(c.name)} | ${esc(c.request)} | ${esc(c.expected)} | ${esc(c.observed)} | ${answersAsExpected(c) ? 'yes' : '**NO**'} |`,
    ),
  ].join('\n');
}
