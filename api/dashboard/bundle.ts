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

/**
 * supabase-js for the sign-in form (./supabase-auth.js): a second bundle, an ES module the page imports
 * only when the API names a Supabase project — about 210 KB minified (55 KB gzipped) against the
 * dashboard's 50 KB, so local mode and pasted tokens never fetch it.
 */
export const supabaseAuthBuildOptions: BuildOptions = {
  ...dashboardBuildOptions,
  entryPoints: [join(__dirname, 'supabase-auth.js')],
  format: 'esm',
};
export const PREBUILT_SUPABASE_BUNDLE = join(__dirname, 'supabase-auth.bundle.js');

const bundled = new Map<string, Promise<string>>();

/**
 * A script of the page: the prebuilt file when there is one (the images: no esbuild in production),
 * else built in memory by esbuild once per process, so `npm start` and the tests need no separate
 * build step. A syntax or import error fails the API's start-up instead of shipping a broken page.
 */
function bundle(options: BuildOptions, prebuilt: string): Promise<string> {
  if (existsSync(prebuilt)) return Promise.resolve(readFileSync(prebuilt, 'utf8'));
  let built = bundled.get(prebuilt);
  if (!built) {
    built = import('esbuild')
      .then(({ build }) => build({ ...options, write: false }))
      .then((result) => {
        const file = result.outputFiles[0];
        if (!file) throw new Error(`esbuild produced no bundle for ${String(options.entryPoints)}`);
        return file.text;
      });
    bundled.set(prebuilt, built);
    // A failed build is not cached: the next start-up tries again.
    void built.catch(() => bundled.delete(prebuilt));
  }
  return built;
}

/** The dashboard script with the client library bundled in (about 100 ms to build). */
export const dashboardBundle = () => bundle(dashboardBuildOptions, PREBUILT_BUNDLE);
/** supabase-js as an ES module (about 300 ms to build: only when Supabase is configured). */
export const supabaseAuthBundle = () => bundle(supabaseAuthBuildOptions, PREBUILT_SUPABASE_BUNDLE);
