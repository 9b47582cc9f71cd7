import { existsSync, readFileSync } from 'node:fs';
import { type FlyClient } from '../../fly/client';
import { machineAddress } from '../../fly/machines';
import type { FlyLocal } from './fly-local';
import { parseImageRegistry, RUNTIME_IMAGE, defaultImageRegistry } from './processes';
import { createEcho, flyLocalSuite, info } from './test-fixture';
import { EXIT0_IMAGE, EXIT1_IMAGE, TEST_TOKEN, getEcho, processAlive } from './test-helpers';
import { until } from '../../test/kit/wait';

/** The process supervisor: machines are real processes, stopped by signal, restarted by their policy. */

const { spec, data, start } = flyLocalSuite();

describe('machines are processes', () => {
  let flyLocal: FlyLocal;
  let fly: FlyClient;
  beforeAll(async () => ({ flyLocal, fly } = await start({ dataDir: `${data.dir}/a` })));

  test('a machine runs detached, logs to a file, answers on its port, and is dead after delete', async () => {
    const m = await createEcho(fly);
    const echo = await getEcho(machineAddress(m, 8080).origin);
    const { pid, logFile } = info(flyLocal, m.id);
    expect(echo.pid).toBe(pid);
    expect(processAlive(pid as number)).toBe(true);
    await until(
      'the echo machine listening (in its log)',
      () => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('echo listening'),
      { timeoutMs: 5_000, everyMs: 50 },
    );
    await fly.deleteMachine(m.id as string, { force: true });
    await fly.waitMachine(m.id as string, { state: 'destroyed', timeoutSeconds: 5 });
    expect(processAlive(pid as number)).toBe(false);
  });

  test('stop sends the signal and the process exits cleanly', async () => {
    const m = await createEcho(fly);
    const { pid, logFile } = info(flyLocal, m.id);
    await fly.stopMachine(m.id as string, { signal: 'SIGTERM' });
    await fly.waitMachine(m.id as string, { state: 'stopped', timeoutSeconds: 5 });
    expect(processAlive(pid as number)).toBe(false);
    expect(readFileSync(logFile, 'utf8')).toContain('got SIGTERM');
    expect(info(flyLocal, m.id).lastExitCode).toBe(0);
  });

  test('an exit moves the machine to stopped (code 0) or failed (non-zero) under policy "no"', async () => {
    const clean = await fly.createMachine({ config: { image: EXIT0_IMAGE, restart: { policy: 'no' } } });
    const crash = await fly.createMachine({ config: { image: EXIT1_IMAGE, restart: { policy: 'no' } } });
    await fly.waitMachine(clean.id as string, { state: 'stopped', timeoutSeconds: 5 });
    await fly.waitMachine(crash.id as string, { state: 'failed', timeoutSeconds: 5 });
  });

  test('on-failure restarts a crashing machine up to max_retries; always restarts clean exits (bounded)', async () => {
    const crash = await fly.createMachine({
      config: { image: EXIT1_IMAGE, restart: { policy: 'on-failure', max_retries: 2 } },
    });
    const always = await fly.createMachine({ config: { image: EXIT0_IMAGE, restart: { policy: 'always' } } });
    await fly.waitMachine(crash.id as string, { state: 'failed', timeoutSeconds: 10 });
    expect(info(flyLocal, crash.id).restarts).toBe(2);
    await fly.waitMachine(always.id as string, { state: 'stopped', timeoutSeconds: 10 });
    expect(info(flyLocal, always.id).restarts).toBe(3); // maxRestarts default
  });

  test('a crash (admin kill) is restarted by the default on-failure policy', async () => {
    const m = await createEcho(fly);
    const before = info(flyLocal, m.id).pid;
    const res = await fetch(`${flyLocal.url.replace(/\/v1$/, '')}/admin/machines/${m.id}/kill`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(res.status).toBe(204);
    await until(
      'the machine restarted with a new pid',
      () => {
        const now = info(flyLocal, m.id);
        return now.state === 'started' && now.pid !== before;
      },
      { timeoutMs: 5_000, everyMs: 50 },
    );
    expect((await getEcho(machineAddress(await fly.getMachine(m.id as string), 8080).origin)).id).toBe(m.id);
    await fly.deleteMachine(m.id as string, { force: true });
  });
});

test('FLY_LOCAL_IMAGES: arrays and objects; the runtime image is registered by default', () => {
  expect(parseImageRegistry('{"a:1": ["node", "x.js"], "b:1": {"command": "sh", "args": ["-c", "true"]}}')).toEqual({
    'a:1': { command: 'node', args: ['x.js'] },
    'b:1': { command: 'sh', args: ['-c', 'true'] },
  });
  expect(() => parseImageRegistry('{"a": []}')).toThrow();
  expect(defaultImageRegistry()[RUNTIME_IMAGE]).toMatchObject({
    command: 'npx',
    args: ['tsx', 'machine-runtime/main.ts'],
  });
});

test('every response in this suite conforms to the official spec', () => {
  spec.assertAllConform();
});
