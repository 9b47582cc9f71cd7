// ESM-only dependencies are transformed to CommonJS by swc like our own TypeScript.
const esmOnly = ['jose', 'trading-signals', 'openapi-fetch', 'zod'];

const shared = {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testPathIgnorePatterns: ['/node_modules/', '/.tools/', '/.data/', '/dist/', '/supabase/functions/'],
  transform: {
    '^.+\\.(t|j|mj)s$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
};

/**
 * Two tiers, both run by `npm test` (and CI):
 * - unit (`*.unit.test.ts`): pure rules, parsers, schemas, planners; no servers, no global set-up;
 *   `npm run test:unit` runs them alone in seconds.
 * - integration (every other `*.test.ts`): one real Temporal dev server and one real Postgres per run
 *   (test/global-setup.ts), real processes for machines, real WebSockets, real Chromium and Deno.
 * @type {import('jest').Config}
 */
module.exports = {
  testTimeout: 60_000,
  maxWorkers: 2,
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['**/*.unit.test.ts'] },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: [...shared.testPathIgnorePatterns, '\\.unit\\.test\\.ts$'],
      globalSetup: '<rootDir>/test/global-setup.ts',
      setupFilesAfterEnv: ['<rootDir>/test/retry-once.ts'],
      globalTeardown: '<rootDir>/test/global-teardown.ts',
    },
  ],
};
