import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildOptions } from 'esbuild';

const ENTRY = join(__dirname, 'dashboard.js');
/** Written by `npm run build` (scripts/build.ts) next to the compiled API; the images serve it as is. */
export const PREBUILT_BUNDLE = join(__dirname, 'dashboard.bundle.js');

/** How the dashboard script is bundled with the client library (client/), at build time or at start-up. */
export const dashboardBuildOptions: BuildOptions = {
  entryPoints: [ENTRY],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  legalComments: 'none',
  logLevel: 'silent',
};

let bundled: Promise<string> | undefined;

/**
 * The dashboard script with the client library bundled in: the prebuilt file when there is one (the
 * images: no esbuild in production), else built in memory by esbuild once per process (about 100 ms),
 * so `npm start` and the tests need no separate build step. A syntax or import error fails the API's
 * start-up instead of shipping a broken page.
 */
export function dashboardBundle(): Promise<string> {
  if (existsSync(PREBUILT_BUNDLE)) return Promise.resolve(readFileSync(PREBUILT_BUNDLE, 'utf8'));
  bundled ??= import('esbuild')
    .then(({ build }) => build({ ...dashboardBuildOptions, write: false }))
    .then((result) => {
      const file = result.outputFiles[0];
      if (!file) throw new Error('esbuild produced no dashboard bundle');
      return file.text;
    });
  // A failed build is not cached: the next start-up tries again.
  void bundled.catch(() => (bundled = undefined));
  return bundled;
}
