import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { freePort, killGroup, spawnWorker as spawnWorkerProcess } from '../test/kit/processes';
import { sleep } from '../test/kit/wait';
import { machineSearchAttributes } from '../common/search-attributes';
import { createFlyLocal, type FlyLocal } from '../dev/fly-local/fly-local';
import type { Faults } from '../dev/fly-local/faults';

/*
 * The processes a chaos run breaks on purpose, each restartable in place: a file-backed Temporal
 * dev server (same port, same SQLite file), fly-local (same port, same data dir: it re-adopts the
 * machine processes), and the real worker process (`worker/main.ts`, SIGKILLed as a group).
 */

export interface TemporalServer {
  address: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** `temporal server start-dev` on a SQLite file, so a restart keeps every workflow. */
export async function startTemporalServer(opts: { cli: string; dir: string }): Promise<TemporalServer> {
  const [port, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const address = `127.0.0.1:${port}`;
  const log = openSync(join(opts.dir, 'temporal.log'), 'a');
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    join(opts.dir, 't.db'),
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--http-port',
    String(httpPort),
    '--metrics-port',
    String(metricsPort),
    '--headless',
    '--log-level',
    'error',
    ...machineSearchAttributes.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]),
  ];
  let child: ChildProcess;
  const start = async () => {
    child = spawn(opts.cli, args, { stdio: ['ignore', log, log], detached: true });
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const c = await Connection.connect({ address, connectTimeout: 1000 });
        await c.workflowService.getSystemInfo({});
        await c.close();
        return;
      } catch (err) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`Temporal did not start: ${String(err)}`);
        await sleep(200);
      }
    }
  };
  await start();
  return {
    address,
    async restart() {
      await killGroup(child, 'SIGTERM');
      await start();
    },
    async stop() {
      await killGroup(child, 'SIGTERM');
    },
  };
}

export interface RestartableFlyLocal {
  current(): FlyLocal;
  url: string;
  setFaults(faults: Faults): void;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** fly-local in this process, restarted on the same port and data dir (faults are not persisted: reapplied). */
export async function startFlyLocal(opts: {
  dir: string;
  token: string;
  image: string;
  runtimePath: string;
}): Promise<RestartableFlyLocal> {
  const port = await freePort();
  let faults: Faults = {};
  const create = () =>
    createFlyLocal({
      port,
      host: '127.0.0.1',
      token: opts.token,
      dataDir: join(opts.dir, 'fly-local'),
      imageRegistry: { [opts.image]: { command: process.execPath, args: [opts.runtimePath] } },
      faults,
      logger: false,
    });
  let fly = await create();
  return {
    current: () => fly,
    url: fly.url,
    setFaults(f) {
      faults = f;
      fly.setFaults(f);
    },
    async restart() {
      await fly.close({ killMachines: false });
      fly = await create();
    },
    async close() {
      await fly.close({ killMachines: true });
    },
  };
}

/** The real worker process (`npm run worker`), with a prebuilt workflow bundle so a restart takes a second or two. */
export function spawnWorker(opts: { dir: string; env: Record<string, string> }): ChildProcess {
  const log = openSync(join(opts.dir, 'worker.log'), 'a');
  return spawnWorkerProcess({ LOG_LEVEL: 'WARN', ...opts.env }, ['ignore', log, log]);
}
