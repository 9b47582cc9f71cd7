import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createFlyClient } from '../../fly/client';
import { machineAddress } from '../../fly/machines';
import { freePort } from '../../test/kit/processes';
import { createEcho, flyLocalSuite, info } from './test-fixture';
import { TEST_APP, TEST_TOKEN, getEcho, processAlive, testImages } from './test-helpers';
import { until } from '../../test/kit/wait';

/** fly-local restarting over its own state: the journal replayed, running machines re-adopted, none orphaned. */

const { spec, data, start } = flyLocalSuite();

describe('fly-local restarts', () => {
  test('state persists; a running machine is re-adopted; a stopped one stays stopped', async () => {
    const dataDir = `${data.dir}/restart`;
    const first = await start({ dataDir, killMachinesOnClose: false });
    const running = await createEcho(first.fly, { metadata: { user_id: 'u1' } });
    const stopped = await createEcho(first.fly);
    await first.fly.stopMachine(stopped.id as string);
    await first.fly.waitMachine(stopped.id as string, { state: 'stopped', timeoutSeconds: 5 });
    const pid = info(first.flyLocal, running.id).pid as number;
    await first.flyLocal.close(); // like a crash of fly-local: machines keep running
    expect(processAlive(pid)).toBe(true);

    const second = await start({ dataDir });
    const again = await second.fly.getMachine(running.id as string);
    expect(again).toMatchObject({ state: 'started', instance_id: running.instance_id });
    expect(info(second.flyLocal, running.id).pid).toBe(pid);
    expect((await getEcho(machineAddress(again, 8080).origin)).pid).toBe(pid);
    expect((await second.fly.getMachine(stopped.id as string)).state).toBe('stopped');
    expect((await second.fly.listMachines({ metadata: { user_id: 'u1' } })).map((m) => m.id)).toEqual([running.id]);

    // The adopted process is watched: its death applies the restart policy.
    process.kill(-pid, 'SIGKILL');
    await until(
      'the machine restarted with a new pid',
      () => {
        const now = info(second.flyLocal, running.id);
        return now.state === 'started' && now.pid !== undefined && now.pid !== pid;
      },
      { timeoutMs: 5_000, everyMs: 50 },
    );
    const newPid = info(second.flyLocal, running.id).pid as number;
    await second.fly.deleteMachine(running.id as string, { force: true });
    await second.fly.waitMachine(running.id as string, { state: 'destroyed', timeoutSeconds: 5 });
    expect(processAlive(newPid)).toBe(false);
  });

  test('a process whose pid was never recorded (spawned just before a crash) is found and re-adopted', async () => {
    const dataDir = `${data.dir}/unrecorded`;
    const first = await start({ dataDir, killMachinesOnClose: false });
    const m = await createEcho(first.fly);
    const pid = info(first.flyLocal, m.id).pid as number;
    await first.flyLocal.close();
    // As if fly-local died between spawning the process and writing its pid down.
    const statePath = path.join(dataDir, 'state.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { machines: { pid?: number; state: string }[] };
    for (const r of state.machines) {
      delete r.pid;
      r.state = 'starting';
    }
    writeFileSync(statePath, JSON.stringify(state));

    const second = await start({ dataDir });
    expect(info(second.flyLocal, m.id)).toMatchObject({ pid, state: 'started', alive: true });
    await second.fly.deleteMachine(m.id as string, { force: true });
    await second.fly.waitMachine(m.id as string, { state: 'destroyed', timeoutSeconds: 5 });
    expect(processAlive(pid)).toBe(false);
  });

  test('a machine whose process died while fly-local was down is started again', async () => {
    const dataDir = `${data.dir}/died`;
    const first = await start({ dataDir, killMachinesOnClose: false });
    const m = await createEcho(first.fly);
    const pid = info(first.flyLocal, m.id).pid as number;
    await first.flyLocal.close();
    process.kill(-pid, 'SIGKILL');
    await until('the machine process to exit', () => !processAlive(pid), { timeoutMs: 5_000, everyMs: 50 });

    const second = await start({ dataDir });
    await second.fly.waitMachine(m.id as string, { state: 'started', timeoutSeconds: 5 });
    const echo = await getEcho(machineAddress(await second.fly.getMachine(m.id as string), 8080).origin);
    expect(echo.pid).not.toBe(pid);
  });
});

/** Pids of live `sleep <marker>` processes: the machines of one test, found whoever their parent is. */
function sleepPids(marker: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `sleep\0${marker}\0` && processAlive(Number(pid));
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('fly-local crash safety', () => {
  test('SIGKILLed mid-burst of creates: every acknowledged machine is back, re-adopted, and no process is orphaned', async () => {
    const dataDir = `${data.dir}/sigkill`;
    const marker = String(3_000_000 + Math.floor(Math.random() * 1_000_000)); // `sleep <marker>`: findable in /proc
    const image = 'test/sleep:1';
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1`;
    // The CLI in its own process, as `npm run fly-local` runs it: a real SIGKILL, no close(), no final snapshot.
    const cli = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'cli.ts')], {
      env: {
        ...process.env,
        FLY_API_URL: url,
        FLY_API_TOKEN: TEST_TOKEN,
        FLY_LOCAL_DATA_DIR: dataDir,
        FLY_LOCAL_IMAGES: JSON.stringify({ [image]: ['sleep', marker] }),
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    const fly = createFlyClient({ apiUrl: url, token: TEST_TOKEN, app: TEST_APP, fetch: spec.fetch });
    try {
      await until(
        'fly-local answering again',
        async () =>
          (
            await fetch(`${url.replace(/\/v1$/, '')}/admin/faults`, {
              headers: { authorization: `Bearer ${TEST_TOKEN}` },
            }).catch(() => null)
          )?.ok ?? false,
        { timeoutMs: 30_000, everyMs: 50 },
      );
      const acked: string[] = [];
      let burst = true;
      const creators = Array.from({ length: 16 }, async () => {
        while (burst) {
          try {
            acked.push((await fly.createMachine({ config: { image, metadata: { burst: marker } } })).id as string);
          } catch {
            return; // the kill: this request got no answer
          }
        }
      });
      await until('60 acknowledged requests', () => acked.length >= 60, { timeoutMs: 30_000, everyMs: 50 });
      // Which processes ran before the kill: each must be re-adopted with its pid, not started again.
      const before = (await (
        await fetch(`${url.replace(/\/v1$/, '')}/admin/machines`, {
          headers: { authorization: `Bearer ${TEST_TOKEN}` },
        })
      ).json()) as {
        id: string;
        pid?: number;
        alive: boolean;
      }[];
      cli.kill('SIGKILL'); // creates still in flight
      burst = false;
      await Promise.allSettled(creators);
      await new Promise((r) => (cli.exitCode !== null || cli.signalCode !== null ? r(null) : cli.once('exit', r)));
      expect(statSync(path.join(dataDir, 'journal.ndjson')).size).toBeGreaterThan(0); // the state is in the journal

      const second = await start({
        dataDir,
        imageRegistry: { ...testImages, [image]: { command: 'sleep', args: [marker] } },
      });
      const listed = (await second.fly.listMachines({ metadata: { burst: marker } })).map((m) => m.id as string);
      expect(listed).toEqual(expect.arrayContaining(acked)); // nothing acknowledged is lost
      await until(
        'every machine started and alive after the restart',
        () => second.flyLocal.machines().every((m) => m.state === 'started' && m.alive),
        { timeoutMs: 20_000, everyMs: 50 },
      );
      const now = new Map(second.flyLocal.machines().map((m) => [m.id, m.pid]));
      for (const m of before.filter((x) => x.alive && x.pid !== undefined)) expect(now.get(m.id)).toBe(m.pid);
      // Every machine process alive belongs to a machine fly-local knows: none was spawned and then forgotten.
      expect(sleepPids(marker).sort()).toEqual([...now.values()].sort());
      await second.flyLocal.close({ killMachines: true });
      await until('no machine process left', () => sleepPids(marker).length === 0, { timeoutMs: 5_000, everyMs: 50 });
    } finally {
      cli.kill('SIGKILL');
      for (const pid of sleepPids(marker)) process.kill(pid, 'SIGKILL');
    }
  });
});

test('every response in this suite conforms to the official spec', () => {
  spec.assertAllConform();
});
