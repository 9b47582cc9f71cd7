import { createApiStack, type ApiStack } from '../api/test-support/api-stack';
import globalSetup from '../test/global-setup';
import globalTeardown from '../test/global-teardown';
import { quietTemporalLogs } from '../test/temporal';
import { abuseContext, abuseTable, answersAsExpected, type AbuseCase } from './abuse/harness';
import { machineEnvCases, machineRuntimeCases } from './abuse/machine';
import { opsCases } from './abuse/ops';
import { streamFloodCases, streamRefusalCases } from './abuse/stream';
import { tokenCases } from './abuse/tokens';
import { billingCases, webhookCases } from './abuse/webhooks';

/**
 * `npm run abuse`: what the API answers to abuse (bad tokens, bad webhooks, streams it must refuse),
 * as a markdown table. scripts/abuse-table.test.ts runs the same cases and asserts the expected answers.
 * The cases live in scripts/abuse/, one file per group; harness.ts holds what they share.
 */

/**
 * Runs every case against a live stack, group after group in the table's order (users A and B:
 * see `abuseContext`), then stops A's machine.
 */
export async function runAbuseCases(api: ApiStack): Promise<AbuseCase[]> {
  const ctx = await abuseContext(api);
  await tokenCases(ctx);
  await webhookCases(ctx);
  await billingCases(ctx);
  await machineEnvCases(ctx);
  await opsCases(ctx);
  await streamRefusalCases(ctx);
  await machineRuntimeCases(ctx);
  await streamFloodCases(ctx);
  await api.call('POST', '/v1/machines/me/stop', { token: ctx.tokenA });
  return ctx.cases;
}

async function main() {
  // The test harness's Temporal dev server and Postgres, then the API tests' stack on them.
  quietTemporalLogs();
  await globalSetup();
  const api = await createApiStack({ realRuntime: true });
  try {
    const cases = await runAbuseCases(api);
    console.log(`\n${abuseTable(cases)}\n`);
    const bad = cases.filter((c) => !answersAsExpected(c));
    console.log(`abuse: ${cases.length} cases, ${bad.length} unexpected answers`);
    process.exitCode = bad.length ? 1 : 0;
  } finally {
    await api.close();
    await globalTeardown();
  }
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
