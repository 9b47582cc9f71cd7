// POST { userId?, machineId? } → 200 { status: 'stopping', workflowId, machineId }
// The original function's contract, now a thin forwarder: the caller's verified token is the identity
// and the API (POST /v1/machines/me/stop) stops that user's own machine, whatever the body says.
import { callApi, fail, json, readBody, readEnv, refuseOtherUser, serve, verifyCaller } from '../_shared/forward.ts';

interface Status {
  state: string;
  machineId: string | null;
}
interface Stopped {
  workflowId: string;
  state: string;
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

  // A machineId can only confirm which of the caller's machines they mean: one that is not theirs (or
  // no longer current) is refused rather than stopping a different machine than the one asked for.
  const current = await callApi<Status>(env, caller, req, 'GET', '/v1/machines/me');
  if (!current.ok) return current.response;
  const machineId = current.data.machineId;
  if (body.machineId !== undefined && machineId !== null && body.machineId !== machineId)
    return fail(404, `machine ${String(body.machineId)} is not your current machine`);

  const stopped = await callApi<Stopped>(env, caller, req, 'POST', '/v1/machines/me/stop');
  if (!stopped.ok) return stopped.response;
  return json(200, { status: 'stopping', workflowId: stopped.data.workflowId, machineId });
});
