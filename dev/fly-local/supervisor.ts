import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { FaultInjector } from './faults';
import { addEvent, type MachineRecord, type MachineTable, type State } from './machine-table';
import { freePort } from '../../test/kit/processes';
import { findMachineProcesses, isAlive, signalGroup, sleep, spawnMachineProcess } from './processes';

/**
 * The process supervisor: each machine's process is launched, watched, restarted by its restart policy, killed,
 * and re-adopted when fly-local starts again. Process actions on one machine run one after the other (`enqueue`).
 */

export interface SupervisorOptions {
  table: MachineTable;
  faults: FaultInjector;
  log: FastifyBaseLogger;
  /** Where each machine's stdout and stderr go (`<id>.log`). */
  logDir: string;
  /** The machines' `private_ip` (FLY_PRIVATE_IP). */
  privateIp: string;
  /** Restarts under policy `on-failure` (without max_retries) or `always` before the machine is left failed. */
  maxRestarts: number;
  /** True once fly-local is closing: nothing is launched or restarted any more. */
  isClosed: () => boolean;
}

export type Supervisor = ReturnType<typeof createSupervisor>;

export function createSupervisor({ table, faults, log, logDir, privateIp, maxRestarts, isClosed }: SupervisorOptions) {
  const { machines, setState, persist, persistAll } = table;
  /** By pid: whoever waits for a process to be gone, whatever generation it belonged to. */
  const exitWaiters = new Map<number, Set<() => void>>();
  const queues = new Map<string, Promise<void>>();
  const pollers = new Map<string, NodeJS.Timeout>();

  const logFile = (id: string) => path.join(logDir, `${id}.log`);

  /** Process actions on one machine run one after the other; each re-checks `desired` when it runs. */
  function enqueue(m: MachineRecord, action: () => Promise<void>): void {
    const previous = queues.get(m.id) ?? Promise.resolve();
    const next = previous
      .then(action)
      .catch((err: unknown) => log.error({ err, machine: m.id }, 'machine action failed'));
    queues.set(m.id, next);
  }

  function watchAdopted(m: MachineRecord): void {
    const gen = m.gen;
    const pid = m.pid;
    if (pid === undefined) return;
    const timer = setInterval(() => {
      if (!isAlive(pid)) {
        clearInterval(timer);
        pollers.delete(m.id);
        // Not our child: its exit code is lost; counted as a crash (the usual reason a machine dies).
        onExit(m, gen, pid, null);
      }
    }, 250);
    timer.unref();
    pollers.set(m.id, timer);
  }

  async function launch(m: MachineRecord, reason: string): Promise<void> {
    if (isClosed() || m.desired !== 'started') return;
    setState(m, 'starting');
    m.port = await freePort(m.port);
    if (isClosed() || m.desired !== 'started') return; // stopped or destroyed while we looked for a port
    // Never two processes for one machine (a restart racing an update or a start).
    if (m.pid !== undefined) await killProcess(m, 'SIGKILL', 0);
    const gen = ++m.gen;
    const env: Record<string, string> = {
      ...m.config.env,
      PORT: String(m.port),
      FLY_MACHINE_ID: m.id,
      FLY_APP_NAME: m.app,
      FLY_REGION: m.region,
      FLY_PRIVATE_IP: privateIp,
      FLY_MACHINE_VERSION: m.instance_id,
      FLY_IMAGE_REF: m.config.image ?? '',
    };
    const startedAt = Date.now();
    let exited = false;
    const child = spawnMachineProcess(m.launch, env, logFile(m.id));
    const exit = (code: number | null) => {
      if (exited) return;
      exited = true;
      if (Date.now() - startedAt > 10_000) m.restarts = 0; // it ran for a while: not a crash loop
      onExit(m, gen, child.pid, code);
    };
    child.once('exit', (code) => exit(code));
    child.once('error', (err) => {
      writeFileSync(logFile(m.id), `fly-local: cannot start ${m.launch.command}: ${err.message}\n`, { flag: 'a' });
      exit(127);
    });
    m.pid = child.pid;
    addEvent(m, 'launch', reason === 'create' ? 'created' : 'started', reason === 'restart' ? 'flyd' : 'user');
    log.info({ machine: m.id, pid: child.pid, port: m.port, reason }, 'machine process started');
    const boot = faults.bootDelayMs(reason === 'create' ? 'create' : reason === 'update' ? 'update' : 'start');
    // A slow boot ends early when the machine is stopped or destroyed meanwhile (the queue waits on it).
    for (const until = Date.now() + boot; Date.now() < until && m.desired === 'started' && !isClosed();) {
      await sleep(Math.min(50, until - Date.now()));
    }
    if (m.gen === gen && !exited && m.state === 'starting') setState(m, 'started');
  }

  function onExit(m: MachineRecord, gen: number, pid: number | undefined, code: number | null): void {
    if (pid !== undefined) {
      for (const done of exitWaiters.get(pid) ?? []) done();
      exitWaiters.delete(pid);
    }
    if (pid !== undefined && m.pid === pid) m.lastExitCode = code;
    // killProcess bumps the generation first: an exit it caused is expected, not a crash.
    if (m.gen !== gen) return;
    m.pid = undefined;
    if (isClosed() || m.desired !== 'started') {
      persist(m);
      return; // a requested stop/destroy/update finishes in its own action
    }
    addEvent(m, 'exit', code === 0 ? 'stopped' : 'failed');
    log.warn({ machine: m.id, code }, 'machine process exited');
    if (m.config.auto_destroy) {
      m.desired = 'destroyed';
      setState(m, 'destroyed');
      return;
    }
    const policy = m.config.restart?.policy ?? 'on-failure';
    const limit = policy === 'on-failure' ? (m.config.restart?.max_retries ?? maxRestarts) : maxRestarts;
    const wantsRestart = policy === 'always' || (policy === 'on-failure' && code !== 0);
    if (wantsRestart && m.restarts < limit) {
      m.restarts += 1;
      setState(m, 'starting');
      enqueue(m, async () => {
        await sleep(100 * m.restarts);
        await launch(m, 'restart');
      });
      return;
    }
    m.desired = 'stopped';
    setState(m, code === 0 ? 'stopped' : 'failed');
  }

  /** Signals the process group and waits for the exit; SIGKILL after the grace period. */
  async function killProcess(m: MachineRecord, signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const pid = m.pid;
    if (pid === undefined || !isAlive(pid)) {
      m.pid = undefined;
      return;
    }
    const exited = new Promise<void>((resolve) => {
      const set = exitWaiters.get(pid) ?? new Set();
      set.add(resolve);
      exitWaiters.set(pid, set);
    });
    m.gen += 1;
    signalGroup(pid, 'SIGCONT'); // a suspended process cannot handle its stop signal
    signalGroup(pid, signal);
    const inTime = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!inTime) signalGroup(pid, 'SIGKILL');
    // The leader is gone; anything left in its group (npx's grandchildren) goes too.
    signalGroup(pid, 'SIGKILL');
    const deadline = Date.now() + 2000;
    while (isAlive(pid) && Date.now() < deadline) await sleep(20);
    exitWaiters.delete(pid);
    m.pid = undefined;
  }

  /** At start: re-adopts live processes, restarts the ones that died meanwhile, settles the rest. */
  function recover(): void {
    // A process spawned just before a crash has no recorded pid yet: find it by its FLY_MACHINE_ID.
    const unknown = [...machines.values()].filter(
      (m) => m.state !== 'destroyed' && !(m.pid !== undefined && isAlive(m.pid)),
    );
    const found = unknown.length ? findMachineProcesses(new Set(unknown.map((m) => m.id))) : new Map<string, number>();
    for (const m of unknown) {
      const pid = found.get(m.id);
      if (pid !== undefined) m.pid = pid;
    }
    for (const m of machines.values()) {
      if (m.state === 'destroyed') continue;
      m.gen += 1;
      if (m.pid !== undefined && isAlive(m.pid)) {
        log.info({ machine: m.id, pid: m.pid }, 'adopting running machine');
        watchAdopted(m);
        if (m.state === 'starting' || m.state === 'updating') m.state = m.desired === 'started' ? 'started' : m.state;
        if (m.state === 'suspending') m.state = 'suspended';
        if (m.state === 'stopping' || m.state === 'destroying' || m.desired === 'stopped') {
          const final: State = m.state === 'destroying' ? 'destroyed' : 'stopped';
          enqueue(m, async () => {
            await killProcess(m, 'SIGKILL', 0);
            setState(m, final);
          });
        }
        continue;
      }
      m.pid = undefined;
      if (m.state === 'destroying') m.state = 'destroyed';
      else if (m.desired === 'started' && m.config.restart?.policy !== 'no') enqueue(m, () => launch(m, 'restart'));
      else if (m.state !== 'created' && m.state !== 'failed') m.state = 'stopped';
    }
    persistAll(); // replayed state becomes the snapshot; a torn journal line is gone from here on
  }

  async function killAll(): Promise<void> {
    await Promise.all(
      [...machines.values()].map(async (m) => {
        m.desired = m.state === 'destroyed' ? 'destroyed' : 'stopped';
        await killProcess(m, 'SIGKILL', 0);
        if (m.state !== 'destroyed') m.state = 'stopped';
      }),
    );
  }

  return {
    logFile,
    enqueue,
    launch,
    killProcess,
    recover,
    killAll,
    /** Stops watching re-adopted processes (close). */
    stopPolling(): void {
      for (const timer of pollers.values()) clearInterval(timer);
    },
    /** Waits for every queued process action to finish (close). */
    settle(): Promise<unknown> {
      return Promise.allSettled(queues.values());
    },
  };
}
