import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowsPath } from '../worker/create-worker';

/** `npm run build:bundle`: the workflow code bundled once, for WORKFLOW_BUNDLE_PATH (Docker images start faster). */
async function main() {
  const out = resolve(process.argv[2] ?? 'dist/workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, code);
  console.log(`[build:bundle] wrote ${out} (${(code.length / 1024).toFixed(0)} KiB)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
