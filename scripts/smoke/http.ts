/** What the smoke test's checks share: the target, results, and one HTTP call that never throws. */

export interface SmokeTarget {
  /** The API's origin, e.g. https://cloud-execution.fly.dev (a path prefix is kept; no trailing slash needed). */
  api: string;
  /** A Supabase access token of the smoke user (`Authorization: Bearer …`). */
  token?: string;
  /** Per request; default 10 s. */
  timeoutMs?: number;
}

/** One line of the report: ✓ or ✗ and a sentence that says what is right or wrong, in plain words. */
export interface CheckResult {
  ok: boolean;
  check: string;
  message: string;
}

export const pass = (check: string, message: string): CheckResult => ({ ok: true, check, message });
export const fail = (check: string, message: string): CheckResult => ({ ok: false, check, message });

export const base = (t: SmokeTarget) => t.api.replace(/\/+$/, '');

export interface Answer {
  /** 0 when there was no answer at all (see `error`). */
  status: number;
  headers: Headers;
  json: Record<string, unknown> | undefined;
  text: string;
  error?: string;
}

/** fetch with a timeout; a network failure is an answer with status 0 and the reason, never a throw. */
export async function call(
  t: SmokeTarget,
  method: string,
  path: string,
  o: { token?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.body !== undefined) headers['content-type'] ??= 'application/json';
  try {
    const res = await fetch(`${base(t)}${path}`, {
      method,
      headers,
      body: o.body,
      signal: AbortSignal.timeout(t.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    let json: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = text ? JSON.parse(text) : undefined;
      if (parsed && typeof parsed === 'object') json = parsed as Record<string, unknown>;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json, text };
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return {
      status: 0,
      headers: new Headers(),
      json: undefined,
      text: '',
      error: `${err instanceof Error ? err.message : String(err)}${cause}`,
    };
  }
}

/** The problem document's `detail` (the API's errors are application/problem+json), else the start of the body. */
export function detailOf(a: Answer): string {
  if (a.error) return a.error;
  const detail = a.json?.detail;
  if (typeof detail === 'string') return detail;
  return a.text.slice(0, 200) || '(empty body)';
}

/** The claims of a JWT, read without verifying (only to explain a refusal); undefined if it is not one. */
export function claimsOf(token: string): { sub?: unknown; exp?: unknown; iat?: unknown } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' ? claims : undefined;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
