import { SignJWT } from 'jose';
/** The `purpose` of the tokens a machine signs to call the control plane's machine-facing API. */
export const MACHINE_API_PURPOSE = 'machine-api';

/**
 * A 60-second token a machine signs with its own machine key (`sub` = its user) for `/v1/machine/*`.
 * The API derives the same key from the JWT secret and the `sub`, so a machine can only sign as itself.
 */
export async function signMachineApiToken(machineKey: string, userId: string): Promise<string> {
  return new SignJWT({ purpose: MACHINE_API_PURPOSE })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(new TextEncoder().encode(machineKey));
}
