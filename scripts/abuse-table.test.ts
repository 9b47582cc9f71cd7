import { createApiStack, type ApiStack } from '../api/test-support/api-stack';
import { abuseTable, type AbuseCase } from './abuse/harness';
import { runAbuseCases } from './abuse-table';

jest.setTimeout(180_000);

describe('abuse table (the cases `npm run abuse` prints)', () => {
  let api: ApiStack;
  let cases: AbuseCase[];

  beforeAll(async () => {
    api = await createApiStack({ realRuntime: true }); // the machine rows need the real runtime
    cases = await runAbuseCases(api);
  });
  afterAll(async () => {
    await api?.close();
  });

  test('every case gets the expected answer', () => {
    const answers = Object.fromEntries(cases.map((c) => [`${c.group}: ${c.name}`, c.observed]));
    expect(answers).toEqual(
      Object.fromEntries(
        cases.map((c) => [
          `${c.group}: ${c.name}`,
          /^\d{3}$/.test(c.expected)
            ? expect.stringMatching(new RegExp(`^${c.expected}\\b`))
            : expect.stringMatching(new RegExp(`^${c.expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`)),
        ]),
      ),
    );
    expect(cases.length).toBeGreaterThanOrEqual(17);
    expect(abuseTable(cases)).not.toContain('**NO**');
  });
});
