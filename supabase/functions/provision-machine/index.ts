// POST { userId?, region?, cpuPriority? } → 200 { machineId, websocketUrl, status, workflowId }
// The original function's contract, now a thin forwarder: the caller's verified token is the identity,
// the API (POST /v1/machines) provisions idempotently, and `websocketUrl` is the API's stream gateway.
import {
  callApi,
  json,
  readBody,
  readEnv,
  refuseOtherUser,
  serve,
  streamUrl,
  verifyCaller,
} from '../_shared/forward.ts';

interface Provisioned {
  workflowId: string;
  state: string;
}
interface Status {
  state: string;
  machineId: string | null;
}

serve(async (req) => {
  const env = readEnv();
  if (env instanceof Response) return env;
  const caller = await verifyCaller(req, env);
  if (caller instanceof Response) return caller;
  const body = await readBody(req);
  if (body instanceof Response) return body;
  const refused = refuseOtherUser(body, caller);
  if (refused) return refused;

  // Only the fields the API takes: it refuses anything else (a userId above all).
  const request: Record<string, unknown> = {};
  if (body.region !== undefined) request.region = body.region;
  if (body.cpuPriority !== undefined) request.cpuPriority = body.cpuPriority;

  const started = await callApi<Provisioned>(env, caller, req, 'POST', '/v1/machines', request);
  if (!started.ok) return started.response;

  // The Fly machine id, once the workflow has one (null while it is still being created).
  const status = await callApi<Status>(env, caller, req, 'GET', '/v1/machines/me');
  const machineId = status.ok ? (status.data.machineId ?? null) : null;
  return json(200, {
    machineId,
    websocketUrl: streamUrl(env),
    status: status.ok ? status.data.state : started.data.state,
    workflowId: started.data.workflowId,
  });
});
