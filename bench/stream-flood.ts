import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import WebSocket from 'ws';
import { createApiStack } from '../api/test-support/api-stack';
import { TEST_IMAGE } from '../test/machine-stack';
import { sleep } from '../test/kit/wait';
import { runBenchmark } from './lib/infra';
import { mb, report, type Row } from './lib/report';

/**
 * `npx tsx bench/stream-flood.ts`: one browser floods the stream gateway with 4 KB frames toward a
 * machine that never reads (api/test-support/slow-machine.mjs), for FLOOD_SECONDS; the API's RSS before and
 * at its peak. The security review saw ~600 MB of growth in 8 s before the gateway bounded this
 * direction. The client reconnects whenever the gateway closes it, so the flood lasts the whole time.
 */
const FLOOD_SECONDS = Number(process.env.FLOOD_SECONDS ?? 8);

async function flood(wsUrl: string, token: string, seconds: number) {
  const until = Date.now() + seconds * 1000;
  const frame = 'x'.repeat(4000);
  const closes: Record<string, number> = {};
  let sent = 0;
  while (Date.now() < until) {
    await new Promise<void>((done) => {
      const ws = new WebSocket(wsUrl, ['bearer', token]);
      ws.on('error', () => undefined);
      ws.on('open', () => {
        const pump = () => {
          while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 1 << 20 && Date.now() < until) {
            ws.send(frame);
            sent++;
          }
          if (ws.readyState === WebSocket.OPEN && Date.now() < until) setImmediate(pump);
          else if (ws.readyState === WebSocket.OPEN) ws.close();
        };
        pump();
      });
      ws.on('close', (code, reason) => {
        const key = `${code} ${reason.toString()}`.trim();
        closes[key] = (closes[key] ?? 0) + 1;
        done();
      });
    });
  }
  return { sent, closes };
}

runBenchmark(module, {}, async (startLoad) => {
  const rows: Row[] = [];
  for (const [label, env] of [
    ['defaults (20 frames/s, 1 MB)', {}],
    [
      'rate limit off: the byte bound alone',
      { API_STREAM_MAX_MESSAGES_PER_SECOND: '1000000000', API_STREAM_MESSAGE_BURST: '1000000000' },
    ],
  ] as const) {
    const api = await createApiStack({ env: { ...env, API_RATE_LIMIT_MAX: '100000' } });
    try {
      // This stack's machines run the slow machine instead of the usual stand-in runtime.
      api.stack.flyLocal.registerImage(TEST_IMAGE, {
        command: process.execPath,
        args: [resolve(__dirname, '../api/test-support/slow-machine.mjs')],
        cwd: resolve(__dirname, '..'),
      });
      const userId = await api.createUser('elite');
      const token = await api.token(userId);
      await api.call('POST', '/v1/machines', { token });
      await api.waitForStatus(token, (s) => s.state === 'running', 90_000);
      global.gc?.();
      await sleep(500);
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
      const result = await flood(`${api.wsUrl}/v1/machines/me/stream`, token, FLOOD_SECONDS);
      clearInterval(sampler);
      rows.push({
        variant: label,
        'flood s': FLOOD_SECONDS,
        'frames sent': result.sent,
        'MB offered': mb(result.sent * 4000),
        'RSS before MB': mb(before),
        'RSS peak MB': mb(peak),
        'growth MB': mb(peak - before),
        'gateway closes': Object.entries(result.closes)
          .map(([k, n]) => `${n}× ${k}`)
          .join('; '),
      });
    } finally {
      await api.close();
    }
  }
  report('stream', {
    title: 'stream: API memory under a browser → machine flood',
    startLoad,
    tables: [{ rows }],
    notes: [
      'One process hosts the API, the worker, fly-local and this client: growth is of that whole process, an upper bound for the API.',
      'Before the bound (security review): ~490 MB pushed in 8 s, RSS +600 MB.',
      ...uncommitted(),
    ],
  });
});

/** The gateway's files when they differ from the commit the table names. */
function uncommitted(): string[] {
  try {
    const changed = execFileSync('git', ['status', '--porcelain', '--', 'api/stream.ts', 'api/stream-limits.ts'], {
      encoding: 'utf8',
    }).trim();
    return changed ? [`Uncommitted gateway changes on top of that commit: ${changed.replace(/\s+/g, ' ')}.`] : [];
  } catch {
    return [];
  }
}
