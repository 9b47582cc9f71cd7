import { join } from 'node:path';
import { build } from 'esbuild';

const ENTRY = join(__dirname, 'dashboard.js');

let bundled: Promise<string> | undefined;

/**
 * The dashboard script with the client library (client/) bundled in, built in memory by esbuild once
 * per process (about 100 ms), so `npm start` and the tests need no separate build step. A syntax or
 * import error fails the API's start-up instead of shipping a broken page.
 */
export function dashboardBundle(): Promise<string> {
  bundled ??= build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  }).then((result) => {
    const file = result.outputFiles[0];
    if (!file) throw new Error('esbuild produced no dashboard bundle');
    return file.text;
  });
  // A failed build is not cached: the next start-up tries again.
  void bundled.catch(() => (bundled = undefined));
  return bundled;
}
