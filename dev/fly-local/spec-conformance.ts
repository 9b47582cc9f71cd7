import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { REPO_ROOT } from './processes';

/*
 * Test helper: records what fly-local answers and checks each answer against the schemas of Fly's official
 * OpenAPI spec. The spec stays outside the repo (../shared/reference), so a clone without it skips the check.
 */

export const SPEC_PATH = path.resolve(REPO_ROOT, '..', 'shared', 'reference', 'fly-machines-openapi.json');

export interface RecordedResponse {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

/** A fetch for createFlyClient (or direct calls) that remembers every response. */
export function createRecorder() {
  const recorded: RecordedResponse[] = [];
  const record = async (input: Request | string, init?: RequestInit): Promise<Response> => {
    const request = typeof input === 'string' ? new Request(input, init) : input;
    const response = await fetch(request);
    const text = await response.clone().text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: kept as text, which the validator reports
    }
    recorded.push({ method: request.method, path: new URL(request.url).pathname, status: response.status, body });
    return response;
  };
  return { fetch: (input: Request) => record(input), request: record, recorded };
}

type Operation = { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> };
interface Spec {
  paths: Record<string, Record<string, Operation>>;
  components: unknown;
}

export type SpecValidator =
  { skipped: true; reason: string } | { skipped: false; validate(response: RecordedResponse): string[] };

export function loadSpecValidator(specPath = SPEC_PATH): SpecValidator {
  if (!existsSync(specPath)) {
    return { skipped: true, reason: `Fly's OpenAPI spec is not at ${specPath} (it lives outside the repo)` };
  }
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as Spec;
  // strict: false because the spec carries OpenAPI-only keywords (`example`, `x-…`) that are not JSON Schema.
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'fly', components: spec.components });
  const compiled = new Map<string, ValidateFunction>();
  const compile = (key: string, schema: unknown) => {
    let fn = compiled.get(key);
    if (!fn) {
      // The spec's refs are document-relative; point them at the components registered above.
      fn = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"fly#/components/')));
      compiled.set(key, fn);
    }
    return fn;
  };
  const templates = Object.keys(spec.paths).map((template) => ({
    template,
    regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));
  const check = (key: string, schema: unknown, body: unknown): string[] => {
    const fn = compile(key, schema);
    return fn(body) ? [] : [ajv.errorsText(fn.errors)];
  };
  const errorSchema = { $ref: '#/components/schemas/ErrorResponse' };

  return {
    skipped: false,
    validate({ method, path: fullPath, status, body }) {
      const where = `${method} ${fullPath} → ${status}`;
      const apiPath = fullPath.replace(/^\/v1/, '');
      const match = templates.find((t) => t.regex.test(apiPath));
      const operation = match && spec.paths[match.template]?.[method.toLowerCase()];
      if (!match || !operation) return [`${where}: not a route of the spec`];
      const documented = operation.responses?.[String(status)];
      if (!documented) {
        // The spec documents few error statuses (no 401/404/409/429 on most routes), but real Fly answers every
        // error with an ErrorResponse body; successes must be documented.
        if (status < 400) return [`${where}: status not documented by the spec`];
        const errors = check('ErrorResponse', errorSchema, body);
        if (typeof (body as { error?: unknown } | undefined)?.error !== 'string')
          errors.push('error body lacks `error`');
        return errors.map((e) => `${where}: ${e}`);
      }
      const schema = documented.content?.['application/json']?.schema;
      if (!schema) return []; // documented without a body schema (start, stop, delete, release lease …)
      let checked = body;
      // Real Fly wraps leases as {status: "success", data: Lease} while the spec's Lease is flat
      // (fly-machines-notes.md): fly-local follows Fly, so the schema applies to `data`.
      if (match.template.endsWith('/lease') && body && typeof body === 'object' && 'data' in body) {
        if ((body as { status?: unknown }).status !== 'success')
          return [`${where}: lease envelope without status success`];
        checked = (body as { data: unknown }).data;
      }
      return check(`${match.template} ${method} ${status}`, schema, checked).map((e) => `${where}: ${e}`);
    },
  };
}
