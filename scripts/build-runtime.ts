import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';

/*
 * `npm run build:runtime`: the machine runtime as one self-contained file, `dist/runtime/runtime.js`
 * (machine-runtime/main.ts and every package it uses, bundled by esbuild), the only file of ours in
 * the image every user's machine runs (machine-runtime/Dockerfile). Prints what is inside by package,
 * and refuses a bundle that pulls in the control plane (pg, Temporal, PGlite): lint keeps
 * machine-runtime/ from importing them, this keeps a transitive import from sneaking them in.
 */
const root = resolve(__dirname, '..');
const outfile = join(root, 'dist/runtime/runtime.js');
const FORBIDDEN = /node_modules\/(pg|pg-[a-z-]+|@temporalio\/[a-z-]+|@electric-sql\/[a-z-]+|esbuild)\//;

/** Bundles the runtime into `out` (default dist/runtime/runtime.js); the tests run that file as a machine. */
export async function buildRuntimeBundle(out = outfile) {
  mkdirSync(dirname(out), { recursive: true });
  const result = await build({
    entryPoints: [join(root, 'machine-runtime/main.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    outfile: out,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  writeFileSync(`${out}.meta.json`, JSON.stringify(result.metafile));
  const bytesByPackage = new Map<string, number>();
  const forbidden: string[] = [];
  for (const [input, { bytesInOutput }] of Object.entries(
    result.metafile.outputs[Object.keys(result.metafile.outputs)[0]!]!.inputs,
  )) {
    if (FORBIDDEN.test(input)) forbidden.push(input);
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
    const key = m ? m[1]! : input.split('/')[0]!;
    bytesByPackage.set(key, (bytesByPackage.get(key) ?? 0) + bytesInOutput);
  }
  if (forbidden.length > 0)
    throw new Error(`the runtime bundle pulls in control-plane code: ${forbidden.slice(0, 5).join(', ')}`);
  return { file: out, bytes: statSync(out).size, bytesByPackage };
}

async function main() {
  const { bytesByPackage } = await buildRuntimeBundle();
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(`[build:runtime] ${outfile.slice(root.length + 1)}: ${kib(statSync(outfile).size)}`);
  const sorted = [...bytesByPackage].sort((a, b) => b[1] - a[1]);
  for (const [name, bytes] of sorted.slice(0, 12)) console.log(`  ${name.padEnd(28)} ${kib(bytes).padStart(8)}`);
  const rest = sorted.slice(12).reduce((sum, [, bytes]) => sum + bytes, 0);
  console.log(`  ${`${sorted.length - 12} more packages`.padEnd(28)} ${kib(rest).padStart(8)}`);
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
