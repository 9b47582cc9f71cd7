import { isLocalServiceUrl } from '../common/loopback';
import type { components } from './fly-api';

/** A Fly machine as the Machines API describes it (types from Fly's OpenAPI spec), and where it listens. */

type Schemas = components['schemas'];
export type Machine = Schemas['Machine'];
export type MachineConfig = Schemas['fly.MachineConfig'];
export type CreateMachineRequest = Schemas['CreateMachineRequest'];
export type UpdateMachineRequest = Schemas['UpdateMachineRequest'];
export type WaitMachineResponse = Schemas['WaitMachineResponse'];
export type Lease = Schemas['Lease'];

/** States in which Fly keeps answering for a machine that is no longer there to run. */
const GONE_STATES = new Set(['destroyed', 'destroying', 'replaced', 'migrated']);
export const isGone = (machine: Pick<Machine, 'state'>) => GONE_STATES.has(machine.state ?? '');

/** fly-local puts the host port of a machine's process here (see dev/fly-local/README.md); real Fly never does. */

export const FLY_LOCAL_PORT_METADATA_KEY = 'fly_local_port';

/** Whether a Machines API URL is fly-local's: loopback, or a single-label host (a compose service). */
export const isFlyLocalUrl = isLocalServiceUrl;

/**
 * Where a machine's service listens. On Fly: `[private_ip]:internalPort` over 6PN. Under fly-local every
 * machine is a process on 127.0.0.1 with its own port, published in `config.metadata.fly_local_port`.
 */
export function machineAddress(machine: Machine, internalPort: number): { host: string; port: number; origin: string } {
  const localPort = Number(machine.config?.metadata?.[FLY_LOCAL_PORT_METADATA_KEY]);
  const host = machine.private_ip ?? '';
  if (!host) throw new Error(`machine ${machine.id ?? '?'} has no private_ip`);
  const port = Number.isInteger(localPort) && localPort > 0 ? localPort : internalPort;
  return { host, port, origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}` };
}
