import type { AbuseContext } from './harness';

/*
 * Tokens the API must refuse: missing, expired, forged, the wrong audience or role, alg none, too
 * long-lived, a machine's own token as a login; and B reaching for A's machine.
 */

/** Each refused token, then A, unharmed by all of them. */
export async function tokenCases(ctx: AbuseContext): Promise<void> {
  const { api, a, tokenA, tokenB, statusA, add, status } = ctx;
  {
    const r = await status('GET', '/v1/machines/me');
    add('token', 'none', 'GET /v1/machines/me, no Authorization', '401', r.text);
  }
  {
    const r = await status('GET', '/v1/machines/me', { token: await api.token(a, { ttlSeconds: -60 }) });
    add('token', 'expired', 'GET /v1/machines/me, exp 60 s ago', '401', r.text);
  }
  {
    const forged = await api.token(a, { secret: 'not-the-project-secret-but-32-chars!!' });
    const r = await status('POST', '/v1/machines/me/stop', { token: forged });
    add('token', 'forged', 'POST /v1/machines/me/stop, signed with another secret', '401', r.text);
  }
  {
    const r = await status('GET', '/v1/machines/me', { token: await api.token(a, { audience: 'anon' }) });
    add('token', 'other audience', 'GET /v1/machines/me, aud "anon"', '401', r.text);
  }
  {
    const payload = tokenA.split('.')[1];
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
    const r = await status('GET', '/v1/machines/me', { token: none });
    add('token', 'alg none', 'GET /v1/machines/me, A’s claims with alg none, no signature', '401', r.text);
  }
  for (const [name, role] of [
    ['anon key', 'anon'],
    ['service-role key', 'service_role'],
  ] as const) {
    const r = await status('GET', '/v1/machines/me', { token: await api.token(a, { claims: { role } }) });
    add('token', name, `GET /v1/machines/me, A's sub with role ${role}`, '401', r.text);
  }
  {
    const r = await status('GET', '/v1/machines/me', { token: await api.token(a, { ttlSeconds: 100 * 365 * 86_400 }) });
    add('token', '100-year lifetime', 'GET /v1/machines/me, exp 100 years after iat', '401', r.text);
  }
  {
    // The user token A's own machine holds (read from its Fly config, as a compromised machine could).
    const [machine] = await api.stack.fly.listMachines({ metadata: { user_id: a } });
    const machineToken = machine?.config?.env?.USER_TOKEN ?? '';
    const r = await status('GET', '/v1/machines/me', { token: machineToken });
    add(
      'token',
      'a machine’s user token as a login',
      'GET /v1/machines/me with the USER_TOKEN of A’s machine',
      '401',
      r.text,
    );
  }
  {
    const r = await status('GET', '/v1/machines/me', { token: tokenB });
    add('token', 'other user’s machine: read', 'GET /v1/machines/me as B (A has a machine)', '404', r.text);
  }
  {
    const r = await status('POST', '/v1/machines/me/stop', { token: tokenB });
    add('token', 'other user’s machine: stop', 'POST /v1/machines/me/stop as B', '404', r.text);
  }
  {
    const r = await status('POST', '/v1/machines', { token: tokenB, body: { userId: a } });
    add('token', 'other user’s machine: name it', 'POST /v1/machines as B with body {userId: A}', '400', r.text);
  }
  {
    const after = await api.waitForStatus(tokenA, () => true);
    add(
      'token',
      'A after all of the above',
      'GET /v1/machines/me as A',
      `running on ${statusA.machineId}`,
      `${after.state} on ${after.machineId}`,
    );
  }
}
