import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { checkSearchAttributes, MissingSearchAttributesError, setupCommands } from './search-attribute-check';
import { testAddress } from '../test/temporal';

describe('the start-up check of the five search attributes', () => {
  let connection: Connection;
  beforeAll(async () => {
    connection = await Connection.connect({ address: testAddress() });
  });
  afterAll(async () => {
    await connection?.close();
  });

  test('the run’s dev server has them all (the set-up registers them)', async () => {
    await expect(checkSearchAttributes(connection, 'default')).resolves.toBe('ok');
  });

  test('a namespace without them stops start-up with the exact commands to create them', async () => {
    const namespace = `no-attrs-${Date.now()}`;
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    const error = await checkSearchAttributes(connection, namespace).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingSearchAttributesError);
    const e = error as MissingSearchAttributesError;
    expect(e.missing).toEqual(['UserId', 'MachineState', 'Tier', 'Region', 'FlyMachineId']);
    expect(e.message).toContain(
      `temporal operator search-attribute create --namespace ${namespace} --name UserId --type Keyword`,
    );
    expect(e.message).toContain(
      `tcld namespace search-attributes add --namespace ${namespace} --search-attribute "UserId=Keyword"`,
    );
  });

  test('a server that will not list them: unverified, not a crash', async () => {
    const refusing = { operatorService: { listSearchAttributes: () => Promise.reject(new Error('PermissionDenied')) } };
    await expect(checkSearchAttributes(refusing, 'default')).resolves.toBe('unverified');
  });

  test('the commands name only what is missing', () => {
    expect(setupCommands('prod', ['Tier'])).toBe(
      [
        '  self-hosted:    temporal operator search-attribute create --namespace prod --name Tier --type Keyword',
        '  Temporal Cloud: tcld namespace search-attributes add --namespace prod --search-attribute "Tier=Keyword"',
      ].join('\n'),
    );
  });
});
