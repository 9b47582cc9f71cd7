import { parseSmokeArgs, runSmoke, USAGE } from './smoke/run';

/**
 * `npm run smoke -- --api https://cloud-execution.fly.dev --token <access token> [--provision]
 * [--webhook-secret <secret>]`: checks a deployment from outside and says what is wrong in plain words
 * (docs/deploy.md, step 9). Exit 0 when every check is ✓, 1 on any ✗, 64 on bad arguments.
 */
async function main() {
  let options;
  try {
    options = parseSmokeArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exit(64);
  }
  const results = await runSmoke(options);
  const failed = results.filter((r) => !r.ok).length;
  console.log(failed ? `\n${failed} of ${results.length} checks failed` : `\nall ${results.length} checks passed`);
  process.exit(failed ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
