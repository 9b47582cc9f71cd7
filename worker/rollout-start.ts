import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { createFlyClient, type FlyClient } from '../fly/client';
import { isGone } from '../fly/machines';
import { IMAGE_ROLLOUT_WORKFLOW_TYPE, imageRolloutWorkflowId, type ImageRolloutRequest } from '../workflows/contract';
import type { imageRollout } from '../workflows/image-rollout';
import type { WorkerConfig } from './config';

export interface RolloutStart {
  workflowId: string;
  /** `started` now, `joined` one that runs, `closed`: this image's rollout has already run; `none`: nothing to do. */
  outcome: 'started' | 'joined' | 'closed' | 'none';
  /** The rollout's first run id (started or joined). */
  runId?: string;
  detail: string;
}

/** How many live user machines (with a `user_id` tag, started) run another image than `image`, per Fly. */
export async function machinesOnOtherImages(fly: FlyClient, image: string): Promise<number> {
  const machines = await fly.listMachines({});
  return machines.filter(
    (m) => m.config?.metadata?.user_id && !isGone(m) && m.state === 'started' && m.config?.image !== image,
  ).length;
}

/**
 * Starts the rollout to `image` when some running machine runs another one; safe at every worker start and
 * from several workers at once: a running rollout of the image is joined (USE_EXISTING), a closed one is not
 * repeated (REJECT_DUPLICATE; an operator starts it again by hand, docs/operations.md).
 */
export async function ensureImageRollout(
  client: Client,
  opts: { fly: FlyClient; taskQueue: string } & ImageRolloutRequest,
): Promise<RolloutStart> {
  const { fly, taskQueue, ...request } = opts;
  const workflowId = imageRolloutWorkflowId(request.image);
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    if (d.status.name === 'RUNNING')
      return { workflowId, outcome: 'joined', runId: d.runId, detail: 'the rollout to this image is running' };
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  const behind = await machinesOnOtherImages(fly, request.image);
  if (behind === 0) return { workflowId, outcome: 'none', detail: 'every running machine runs the image' };
  try {
    const handle = await client.workflow.start<typeof imageRollout>(IMAGE_ROLLOUT_WORKFLOW_TYPE, {
      taskQueue,
      workflowId,
      args: [request],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
    const detail = `${behind} running machine${behind === 1 ? '' : 's'} on another image`;
    return { workflowId, outcome: 'started', runId: handle.firstExecutionRunId, detail };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return { workflowId, outcome: 'closed', detail: 'this image was rolled out already (that rollout has closed)' };
  }
}

/** The worker's start-up step (worker/main.ts): never stops the worker; says what it did. */
export async function startImageRolloutAtStartup(
  client: Client,
  config: WorkerConfig,
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void },
): Promise<RolloutStart | undefined> {
  if (!config.ROLLOUT_ENABLED) return undefined;
  try {
    const started = await ensureImageRollout(client, {
      fly: createFlyClient({ apiUrl: config.FLY_API_URL, token: config.FLY_API_TOKEN, app: config.FLY_APP }),
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      image: config.FLY_MACHINE_IMAGE,
      batchSize: config.ROLLOUT_BATCH_SIZE,
    });
    log.info({ ...started, image: config.FLY_MACHINE_IMAGE }, `image rollout: ${started.outcome}`);
    return started;
  } catch (err) {
    log.warn({ err, image: config.FLY_MACHINE_IMAGE }, 'image rollout not started (the worker runs on)');
    return undefined;
  }
}
