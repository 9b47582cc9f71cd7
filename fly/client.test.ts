import type { FlyLocal } from '../dev/fly-local/fly-local';
import {
  ECHO_IMAGE,
  TEST_APP,
  TEST_TOKEN,
  conformance,
  getEcho,
  processAlive,
  startTestFlyLocal,
  tempDataDir,
} from '../dev/fly-local/test-helpers';
import { createFlyClient, type FlyClient } from './client';
import { isFlyLocalUrl, machineAddress, type Machine } from './machines';
import {
  FlyApiError,
  FlyConnectionError,
  isAlreadyExists,
  isCapacityError,
  isNotFound,
  isRetryableFlyError,
  type FlyError,
} from './errors';

const spec = conformance();
const data = tempDataDir();
let flyLocal: FlyLocal;
let fly: FlyClient;
let seq = 0;

beforeAll(async () => {
  flyLocal = await startTestFlyLocal({ dataDir: data.dir });
  fly = createFlyClient({ apiUrl: flyLocal.url, token: TEST_TOKEN, app: TEST_APP, fetch: spec.fetch });
});

afterAll(async () => {
  await flyLocal.close();
  data.remove();
});

afterEach(() => flyLocal.setFaults({}));

const uniqueName = () => `m-${process.pid}-${++seq}`;
const echoConfig = (metadata: Record<string, string> = {}) => ({
  image: ECHO_IMAGE,
  env: { GREETING: 'hello' },
  services: [{ protocol: 'tcp', internal_port: 8080 }],
  metadata,
});

async function createStarted(metadata: Record<string, string> = {}): Promise<Machine> {
  const m = await fly.createMachine({ name: uniqueName(), region: 'fra', config: echoConfig(metadata) });
  await fly.waitMachine(m.id as string, { state: 'started', timeoutSeconds: 10 });
  return fly.getMachine(m.id as string);
}

async function failure(promise: Promise<unknown>): Promise<FlyError> {
  try {
    await promise;
  } catch (err) {
    return err as FlyError;
  }
  throw new Error('expected the call to fail');
}

test('create, wait for started, get: the machine is a process answering on its address', async () => {
  const created = await fly.createMachine({ name: uniqueName(), region: 'fra', config: echoConfig({ user_id: 'u1' }) });
  expect(created.state).toBe('created');
  expect(created.id).toMatch(/^[0-9a-f]{14}$/);
  const waited = await fly.waitMachine(created.id as string, { state: 'started', timeoutSeconds: 10 });
  expect(waited).toMatchObject({ ok: true, state: 'started' });
  const m = await fly.getMachine(created.id as string);
  expect(m).toMatchObject({ state: 'started', region: 'fra', private_ip: '127.0.0.1', name: created.name });
  expect(m.config?.services?.[0]?.internal_port).toBe(8080); // what was asked for; the host port is separate
  const address = machineAddress(m, 8080);
  expect(address.port).toBe(Number(m.config?.metadata?.fly_local_port));
  const echo = await getEcho(address.origin);
  expect(echo.id).toBe(m.id);
  expect(echo.env).toMatchObject({
    GREETING: 'hello',
    PORT: String(address.port),
    FLY_MACHINE_ID: m.id,
    FLY_APP_NAME: TEST_APP,
    FLY_REGION: 'fra',
    FLY_PRIVATE_IP: '127.0.0.1',
  });
  await fly.deleteMachine(m.id as string, { force: true });
});

test('list filters by metadata, region and include_deleted', async () => {
  const tag = `w-${seq}`;
  const a = await createStarted({ workflow_id: tag, user_id: 'a' });
  const b = await createStarted({ workflow_id: tag, user_id: 'b' });
  expect((await fly.listMachines({ metadata: { workflow_id: tag } })).map((m) => m.id).sort()).toEqual(
    [a.id, b.id].sort(),
  );
  expect((await fly.listMachines({ metadata: { workflow_id: tag, user_id: 'b' } })).map((m) => m.id)).toEqual([b.id]);
  expect(await fly.listMachines({ metadata: { workflow_id: tag }, region: 'ams' })).toEqual([]);
  expect((await fly.listMachines({ metadata: { workflow_id: tag }, summary: true }))[0]?.config).toBeUndefined();

  await fly.deleteMachine(a.id as string, { force: true });
  await fly.waitMachine(a.id as string, { state: 'destroyed', timeoutSeconds: 5 });
  expect((await fly.listMachines({ metadata: { workflow_id: tag } })).map((m) => m.id)).toEqual([b.id]);
  const withDeleted = await fly.listMachines({ metadata: { workflow_id: tag }, includeDeleted: true });
  expect(withDeleted.find((m) => m.id === a.id)?.state).toBe('destroyed');
  await fly.deleteMachine(b.id as string, { force: true });
});

test('a duplicate name is a 409 already_exists the workflow can adopt', async () => {
  const name = uniqueName();
  const first = await fly.createMachine({ name, config: echoConfig() });
  const err = await failure(fly.createMachine({ name, config: echoConfig() }));
  expect(err).toBeInstanceOf(FlyApiError);
  expect(err).toMatchObject({ status: 409, type: 'FlyConflict', retryable: false, operation: 'createMachine' });
  expect(isAlreadyExists(err)).toBe(true);
  expect((err as FlyApiError).flyRequestId).toMatch(/-local$/);
  const [existing] = await fly.listMachines().then((all) => all.filter((m) => m.name === name));
  expect(existing?.id).toBe(first.id);
  await fly.deleteMachine(first.id as string, { force: true });
});

test('stop, start, suspend and resume move through Fly states', async () => {
  const m = await createStarted();
  const id = m.id as string;
  await fly.stopMachine(id, { signal: 'SIGTERM', timeout: '2s' });
  await fly.waitMachine(id, { state: 'stopped', timeoutSeconds: 5 });
  expect((await fly.getMachine(id)).state).toBe('stopped');

  expect(await fly.startMachine(id)).toEqual({ previous_state: 'stopped' });
  await fly.waitMachine(id, { state: ['started', 'failed'], timeoutSeconds: 5 });
  const before = await getEcho(machineAddress(await fly.getMachine(id), 8080).origin);

  await fly.suspendMachine(id);
  expect((await fly.waitMachine(id, { state: 'suspended', timeoutSeconds: 5 })).state).toBe('suspended');
  expect(await fly.startMachine(id)).toEqual({ previous_state: 'suspended' });
  await fly.waitMachine(id, { state: 'started', timeoutSeconds: 5 });
  // Resumed, not rebooted: the same process answers.
  expect((await getEcho(machineAddress(await fly.getMachine(id), 8080).origin)).pid).toBe(before.pid);

  const startAgain = await failure(fly.startMachine(id));
  expect(startAgain).toMatchObject({ status: 412, type: 'FlyPreconditionFailed', retryable: false });
  await fly.deleteMachine(id, { force: true });
});

test('wait answers 408 (retryable FlyTimeout) when the state is not reached in time', async () => {
  const m = await createStarted();
  const err = await failure(fly.waitMachine(m.id as string, { state: 'stopped', timeoutSeconds: 1 }));
  expect(err).toMatchObject({ status: 408, type: 'FlyTimeout', retryable: true, operation: 'waitMachine' });
  expect(isRetryableFlyError(err)).toBe(true);
  await fly.deleteMachine(m.id as string, { force: true });
});

test('update replaces the config and restarts the process with it', async () => {
  const m = await createStarted();
  const id = m.id as string;
  const updated = await fly.updateMachine(id, { config: { ...echoConfig(), env: { GREETING: 'bonjour' } } });
  expect(updated.instance_id).not.toBe(m.instance_id);
  await fly.waitMachine(id, { state: 'started', timeoutSeconds: 5 });
  const echo = await getEcho(machineAddress(await fly.getMachine(id), 8080).origin);
  expect(echo.env.GREETING).toBe('bonjour');
  const stale = await failure(fly.updateMachine(id, { config: echoConfig(), current_version: m.instance_id }));
  expect(stale).toMatchObject({ status: 409, type: 'FlyConflict', retryable: false });
  const rename = await failure(fly.updateMachine(id, { name: 'other', config: echoConfig() }));
  expect(rename).toMatchObject({ status: 400, type: 'FlyBadRequest' });
  await fly.deleteMachine(id, { force: true });
});

test('delete needs force while started; afterwards the process is gone', async () => {
  const m = await createStarted();
  const id = m.id as string;
  const pid = (await getEcho(machineAddress(m, 8080).origin)).pid;
  const refused = await failure(fly.deleteMachine(id));
  expect(refused).toMatchObject({ status: 412, type: 'FlyPreconditionFailed', retryable: false });
  await fly.deleteMachine(id, { force: true });
  expect((await fly.waitMachine(id, { state: 'destroyed', timeoutSeconds: 5 })).state).toBe('destroyed');
  expect((await fly.getMachine(id)).state).toBe('destroyed');
  expect(processAlive(pid)).toBe(false);
  expect(isNotFound(await failure(fly.startMachine(id)))).toBe(true);
});

test('leases: acquire, conflict, nonce on mutations, refresh, get, release, expiry', async () => {
  const m = await createStarted();
  const id = m.id as string;
  const lease = await fly.acquireLease(id, { ttlSeconds: 30, description: 'deploy' });
  expect(lease).toMatchObject({ description: 'deploy', version: m.instance_id });
  expect(lease.nonce).toBeTruthy();
  expect(await failure(fly.acquireLease(id))).toMatchObject({ status: 409, type: 'FlyConflict', retryable: false });
  expect(await failure(fly.stopMachine(id))).toMatchObject({ status: 409 });
  await fly.setMetadata(id, 'k', 'v', { nonce: lease.nonce });

  const refreshed = await fly.refreshLease(id, lease.nonce as string, { ttlSeconds: 60 });
  expect(refreshed.nonce).toBe(lease.nonce);
  expect(refreshed.expires_at as number).toBeGreaterThan(lease.expires_at as number);
  expect((await fly.getLease(id)).nonce).toBe(lease.nonce);
  await fly.releaseLease(id, lease.nonce as string);
  expect(await failure(fly.getLease(id))).toMatchObject({ status: 404, type: 'FlyNotFound' });

  const short = await fly.acquireLease(id, { ttlSeconds: 1 });
  await new Promise((r) => setTimeout(r, 1100));
  const next = await fly.acquireLease(id, { ttlSeconds: 5 });
  expect(next.nonce).not.toBe(short.nonce);
  await fly.deleteMachine(id, { force: true, nonce: next.nonce });
});

test('metadata: get, set, get key, delete key, versioned bulk update', async () => {
  const m = await createStarted({ user_id: 'u7' });
  const id = m.id as string;
  expect(await fly.getMetadata(id)).toEqual({ user_id: 'u7' });
  await fly.setMetadata(id, 'tier', 'elite');
  expect(await fly.getMetadataKey(id, 'tier')).toBe('elite');
  await fly.deleteMetadata(id, 'tier');
  expect(await failure(fly.getMetadataKey(id, 'tier'))).toMatchObject({ status: 404, type: 'FlyNotFound' });
  await fly.updateMetadata(id, { a: '1', user_id: '' }, { machineVersion: m.instance_id });
  expect(await fly.getMetadata(id)).toEqual({ a: '1' });
  const stale = await failure(fly.updateMetadata(id, { a: '2' }, { machineVersion: 'stale' }));
  expect(stale).toMatchObject({ status: 412, type: 'FlyPreconditionFailed', retryable: false });
  await fly.deleteMachine(id, { force: true });
});

test('auth, unknown machines, unknown images and unreachable APIs become typed errors', async () => {
  const intruder = createFlyClient({ apiUrl: flyLocal.url, token: 'wrong', app: TEST_APP, fetch: spec.fetch });
  expect(await failure(intruder.listMachines())).toMatchObject({
    status: 401,
    type: 'FlyUnauthorized',
    retryable: false,
  });
  expect(await failure(fly.getMachine('00000000000000'))).toMatchObject({ status: 404, type: 'FlyNotFound' });
  const badImage = await failure(fly.createMachine({ config: { image: 'nope:1' } }));
  expect(badImage).toMatchObject({ status: 422, type: 'FlyUnprocessable', retryable: false });

  const offline = createFlyClient({ apiUrl: 'http://127.0.0.1:1/v1', token: TEST_TOKEN, app: TEST_APP });
  const err = await failure(offline.listMachines());
  expect(err).toBeInstanceOf(FlyConnectionError);
  expect(err).toMatchObject({ type: 'FlyConnection', retryable: true, operation: 'listMachines' });
});

test('injected faults surface as the right typed errors', async () => {
  flyLocal.setFaults({
    list: { status: 429, times: 1 },
    get: { status: 503, times: 1 },
    start: { status: 400, times: 1 },
  });
  expect(await failure(fly.listMachines())).toMatchObject({ type: 'FlyRateLimited', retryable: true });
  expect(await failure(fly.getMachine('x'))).toMatchObject({ type: 'FlyServerError', retryable: true });
  expect(await failure(fly.startMachine('x'))).toMatchObject({ type: 'FlyBadRequest', retryable: false });
  await expect(fly.listMachines()).resolves.toBeDefined(); // `times` used up

  flyLocal.setFaults({
    create: { status: 412, region: 'fra', flyStatus: 'insufficient_capacity', message: 'no room' },
  });
  const capacity = await failure(fly.createMachine({ region: 'fra', config: echoConfig() }));
  expect(isCapacityError(capacity)).toBe(true);
  expect((capacity as FlyApiError).code).toBe('insufficient_capacity');
  const elsewhere = await fly.createMachine({ region: 'ams', config: echoConfig() });
  await fly.deleteMachine(elsewhere.id as string, { force: true });
});

test('an ambiguous create (500 after the machine was made) is found again by its tag', async () => {
  const tag = `ambiguous-${seq}`;
  flyLocal.setFaults({ create: { status: 500, afterEffect: true, times: 1 } });
  const err = await failure(fly.createMachine({ name: uniqueName(), config: echoConfig({ workflow_id: tag }) }));
  expect(err).toMatchObject({ status: 500, type: 'FlyServerError', retryable: true });
  const [found] = await fly.listMachines({ metadata: { workflow_id: tag } });
  expect(found).toBeDefined();
  await fly.waitMachine(found?.id as string, { timeoutSeconds: 5 });
  await fly.deleteMachine(found?.id as string, { force: true });
});

test('latency, a hang and a slow boot', async () => {
  flyLocal.setFaults({ list: { latencyMs: 300 } });
  const t0 = Date.now();
  await fly.listMachines();
  expect(Date.now() - t0).toBeGreaterThanOrEqual(280);

  flyLocal.setFaults({ get: { hang: true } });
  const impatient = createFlyClient({ apiUrl: flyLocal.url, token: TEST_TOKEN, app: TEST_APP, requestTimeoutMs: 300 });
  expect(await failure(impatient.getMachine('x'))).toMatchObject({ type: 'FlyConnection', retryable: true });

  flyLocal.setFaults({ create: { bootDelayMs: 800 } });
  const m = await fly.createMachine({ config: echoConfig() });
  const t1 = Date.now();
  await fly.waitMachine(m.id as string, { state: 'started', timeoutSeconds: 5 });
  expect(Date.now() - t1).toBeGreaterThanOrEqual(500);
  await fly.deleteMachine(m.id as string, { force: true });
});

test('every response in this suite conforms to the official spec', () => {
  spec.assertAllConform();
});

test('fly_local_port is honoured only from a Machines API on this host, never from a real app’s metadata', async () => {
  const created = await fly.createMachine({
    name: `remote-${Date.now()}`,
    region: 'fra',
    config: { image: ECHO_IMAGE },
  });
  // The same fly-local, reached as if it were a remote Machines API (a non-loopback URL).
  const remote = createFlyClient({
    apiUrl: 'https://api.machines.example.com/v1',
    token: TEST_TOKEN,
    app: TEST_APP,
    fetch: (req: Request) =>
      fetch(new Request(req.url.replace('https://api.machines.example.com/v1', flyLocal.url), req)),
  });
  const seen = await remote.getMachine(created.id as string);
  expect(seen.config?.metadata?.fly_local_port).toBeUndefined();
  expect(machineAddress(seen, 8080).port).toBe(8080);
  expect((await remote.listMachines()).every((m) => m.config?.metadata?.fly_local_port === undefined)).toBe(true);
  expect((await fly.getMachine(created.id as string)).config?.metadata?.fly_local_port).toEqual(expect.any(String));
  await fly.deleteMachine(created.id as string, { force: true });
});

test('fly-local URLs: loopback or a single-label host (compose); real Fly is neither', () => {
  expect(isFlyLocalUrl('http://127.0.0.1:4280/v1')).toBe(true);
  expect(isFlyLocalUrl('http://fly-local:4280/v1')).toBe(true);
  expect(isFlyLocalUrl('https://api.machines.dev/v1')).toBe(false);
  expect(isFlyLocalUrl('http://_api.internal:4280/v1')).toBe(false);
});
