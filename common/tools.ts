import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const repoRoot = resolve(__dirname, '..');

export interface ToolPaths {
  temporalCli: string;
  temporalCliVersion?: string;
  temporalTestServer?: string;
  postgresBin?: string;
}

/** Paths resolved by scripts/setup.mjs (run before `npm start` and `npm test`). */
export function readToolPaths(): ToolPaths {
  const file = resolve(repoRoot, '.tools', 'tools.json');
  if (!existsSync(file))
    throw new Error(`${file} is missing: run \`npm run setup\` (npm start and npm test do it for you)`);
  const tools = JSON.parse(readFileSync(file, 'utf8')) as ToolPaths;
  if (process.env.TEMPORAL_CLI_PATH) tools.temporalCli = process.env.TEMPORAL_CLI_PATH;
  return tools;
}
