import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { guestFor } from '../common/machine-sizes';
import { cpuPriorities, type CpuPriority } from '../workflows/contract';
import { HttpProblem } from './problem';

/** City names of Fly's regions (https://fly.io/docs/reference/regions/); a code not listed shows as itself. */
export const flyRegionNames: Record<string, string> = {
  ams: 'Amsterdam, Netherlands',
  arn: 'Stockholm, Sweden',
  bom: 'Mumbai, India',
  cdg: 'Paris, France',
  dfw: 'Dallas, Texas (US)',
  ewr: 'Secaucus, NJ (US)',
  fra: 'Frankfurt, Germany',
  gru: 'Sao Paulo, Brazil',
  iad: 'Ashburn, Virginia (US)',
  jnb: 'Johannesburg, South Africa',
  lax: 'Los Angeles, California (US)',
  lhr: 'London, United Kingdom',
  nrt: 'Tokyo, Japan',
  ord: 'Chicago, Illinois (US)',
  sin: 'Singapore, Singapore',
  sjc: 'San Jose, California (US)',
  syd: 'Sydney, Australia',
  yyz: 'Toronto, Canada',
};

export const DEFAULT_REGIONS = 'ams,fra,lhr,iad,sin,nrt,syd';
const DEFAULT_CPU_PRIORITY: CpuPriority = 'normal';

const cpuLabels: Record<CpuPriority, string> = {
  low: 'Low: shared CPU, 256 MB',
  normal: 'Normal: shared CPU, 512 MB',
  high: 'High: dedicated CPU, 2 GB',
};

export const optionsResponseSchema = z.object({
  regions: z.array(z.object({ code: z.string(), name: z.string() })).describe('where a machine may run'),
  cpuPriorities: z.array(
    z.object({
      value: z.enum(cpuPriorities),
      label: z.string(),
      guest: z.object({ cpu_kind: z.enum(['shared', 'performance']), cpus: z.number(), memory_mb: z.number() }),
    }),
  ),
  defaults: z.object({ region: z.string(), cpuPriority: z.enum(cpuPriorities) }),
  auth: z
    .object({
      supabase: z
        .object({ url: z.string(), anonKey: z.string() })
        .nullable()
        .describe(
          'Supabase Auth for the sign-in form (SUPABASE_URL, SUPABASE_ANON_KEY; the anon key is public); null: none',
        ),
      devSignIn: z.boolean().describe('local mode: "Dev sign-in" as a seeded user (API_DEV_SIGN_IN)'),
    })
    .describe('how the dashboard signs in'),
});
export type Options = z.infer<typeof optionsResponseSchema>;
export type SignInOptions = Options['auth'];

const NO_SIGN_IN: SignInOptions = { supabase: null, devSignIn: false };

/** What `GET /v1/options` answers: the regions of API_REGIONS (the first is the default) and the sizes. */
export function buildOptions(regions: readonly string[], auth: SignInOptions = NO_SIGN_IN): Options {
  return {
    regions: regions.map((code) => ({ code, name: flyRegionNames[code] ?? code })),
    cpuPriorities: cpuPriorities.map((value) => ({ value, label: cpuLabels[value], guest: guestFor[value] })),
    defaults: { region: regions[0]!, cpuPriority: DEFAULT_CPU_PRIORITY },
    auth,
  };
}

/** The region a provision asks for, or the default; a region not offered is a 400 that lists the allowed ones. */
export function regionFor(requested: string | undefined, regions: readonly string[]): string {
  if (requested === undefined) return regions[0]!;
  if (regions.includes(requested)) return requested;
  const allowed = regions.join(', ');
  throw new HttpProblem(400, `region "${requested}" is not offered; choose one of ${allowed}`, {
    errors: [{ path: 'region', message: `must be one of ${allowed}` }],
  });
}

/** `GET /v1/options`: public (no token): the choices a start form offers, and how the page signs in. */
export function registerOptionsRoute(app: FastifyInstance, deps: { regions: readonly string[]; auth?: SignInOptions }) {
  const options = buildOptions(deps.regions, deps.auth);
  app.get('/v1/options', async () => options);
}
