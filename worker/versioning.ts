import type { WorkerDeploymentOptions } from '@temporalio/worker';

/**
 * Worker Versioning (Temporal Worker Deployments). Off unless WORKER_DEPLOYMENT_NAME is set; the build
 * id is the commit the image was built from (WORKER_BUILD_ID, else GIT_COMMIT). Policy, for workflows
 * that live for months:
 * - machine workflows are AUTO_UPGRADE: when a new version becomes current, running workflows move to
 *   it at their next task, so every change to workflow code must replay old histories: guard a changed
 *   command with `patched('<change-id>')` (workflows/README.md, "Changing workflow code"), and CI replays
 *   the committed histories (workflows/replay.test.ts). PINNED would keep a year-long workflow on its
 *   first build for good.
 * - a new version takes traffic only once it is made current:
 *   `temporal worker deployment set-current-version --deployment-name <name> --build-id <sha>`
 *   (or ramp it: `set-ramping-version --percentage 10`), after its workers poll.
 */
export function workerDeploymentOptions(config: {
  WORKER_DEPLOYMENT_NAME?: string;
  WORKER_BUILD_ID?: string;
}): WorkerDeploymentOptions | undefined {
  if (!config.WORKER_DEPLOYMENT_NAME) return undefined;
  if (!config.WORKER_BUILD_ID)
    throw new Error(
      'WORKER_BUILD_ID (or GIT_COMMIT) is required with WORKER_DEPLOYMENT_NAME: the commit of this build',
    );
  return {
    version: { deploymentName: config.WORKER_DEPLOYMENT_NAME, buildId: config.WORKER_BUILD_ID },
    useWorkerVersioning: true,
    defaultVersioningBehavior: 'AUTO_UPGRADE',
  };
}
