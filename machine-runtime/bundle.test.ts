import WebSocket from 'ws';
import { createApiStack, type ApiStack } from '../api/test-support/api-stack';
import { createCloudExecutionClient } from '../client/api';
import { untilValue } from '../test/kit/wait';

jest.setTimeout(180_000);

// The image every user's machine runs holds node and one file (scripts/build-runtime.ts): the same
// flow as client/api.test.ts, with machines running that bundle on plain node, nothing else beside it.
describe('the machine runtime as the image runs it: one esbuild bundle on plain node', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await createApiStack({ realRuntime: true, runtimeBuild: 'bundle' });
  });
  afterAll(async () => {
    await api?.close();
  });

  test('provisions to running (its /health ok), streams hello and state to a browser, and stops', async () => {
    const userId = await api.createUser('elite');
    const client = createCloudExecutionClient({ baseUrl: api.url, getAccessToken: async () => api.token(userId) });
    await client.provision({ region: 'ams', cpuPriority: 'low' });
    await untilValue(
      'running',
      () => client.status(),
      (s) => s?.state === 'running',
      { everyMs: 250 },
    );

    const stream = client.stream({ WebSocket });
    const seen: string[] = [];
    stream.on('hello', (m) => seen.push(`hello:${m.userId}`));
    stream.on('state', () => seen.push('state'));
    stream.connect();
    await untilValue(
      'hello and state from the bundled runtime',
      () => seen,
      (s) => s.includes(`hello:${userId}`) && s.includes('state'),
    );
    stream.disconnect();

    await client.stop();
    await untilValue(
      'stopped',
      () => client.status(),
      (s) => s?.state === 'stopped',
      { everyMs: 250 },
    );
  });
});
