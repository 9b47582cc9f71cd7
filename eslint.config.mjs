import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const tests = ['**/*.test.ts', '**/test-support/**'];

/** A no-restricted-imports pattern over relative paths: `folders` at any depth (../x, ../../x). */
const banned = (folders, message, extra = {}) => ({
  group: folders.flatMap((f) => [`../${f}`, `../${f}/**`, `../../${f}`, `../../${f}/**`]),
  message,
  ...extra,
});
const noDevOrTest = banned(
  ['dev', 'test', 'bench', 'chaos', 'fuzz', 'scripts', 'ops'],
  'Production code never imports the stand-ins, tests or tools.',
);

/** One block per layer; a later block's options replace an earlier one's for the same file, so each is whole. */
function layerRules() {
  const layer = (files, patterns, paths = [], extraIgnores = []) => ({
    files,
    ignores: [...tests, ...extraIgnores],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { paths, patterns: [noDevOrTest, ...patterns] }] },
  });
  return [
    layer(
      ['common/**/*.ts', 'fly/**/*.ts', 'store/**/*.ts'],
      [
        banned(
          ['api', 'worker', 'activities', 'machine-runtime', 'client'],
          'Adapters and shared code sit below every layer: they import only common/ (and each other).',
        ),
        banned(['workflows'], 'Adapters may use the contract as types only.', { allowTypeImports: true }),
      ],
    ),
    layer(
      ['activities/**/*.ts'],
      [
        banned(
          ['api', 'worker', 'machine-runtime', 'client'],
          'Activities are called by the worker; they import adapters, common/ and the contract.',
        ),
      ],
    ),
    layer(
      ['worker/**/*.ts'],
      [
        banned(
          ['api', 'machine-runtime', 'client'],
          'The worker is the composition root of workflows + activities; it never imports the API.',
        ),
      ],
    ),
    layer(
      ['api/**/*.ts'],
      [
        banned(
          ['worker', 'activities'],
          'The API talks to workflows through the Temporal client and the contract; shared pieces live in common/, fly/ or store/.',
        ),
      ],
    ),
    layer(
      ['machine-runtime/**/*.ts'],
      [
        banned(
          ['api', 'worker', 'activities', 'workflows', 'fly', 'client'],
          "The machine runtime runs in each user's machine: nothing of the control plane goes in its image.",
        ),
        {
          group: ['pg', '@temporalio/*', '@electric-sql/*', 'esbuild'],
          message: "Not in a machine's image: control-plane package.",
        },
      ],
      [
        '../store',
        '../store/index',
        '../store/postgres',
        '../store/migrate',
        '../common/credentials',
        '../common/temporal-connection',
      ].map((name) => ({
        name,
        message:
          'The runtime holds no database credential or signing secret: use store/user-store.ts and the user-scoped stores.',
      })),
    ),
    layer(
      ['client/**/*.ts'],
      [
        {
          group: ['../*', '../**'],
          message: 'client/ is a standalone browser library: it imports nothing outside its folder.',
        },
      ],
    ),
    // Workflow code is replayed: anything non-deterministic (Node built-ins, I/O) is banned, and values come only
    // from the workflow's own files and a few pure shared modules. schemas.ts is not workflow code (the API and
    // the worker validate input with it).
    layer(
      ['workflows/**/*.ts'],
      [
        {
          group: [
            '../*',
            '../**',
            '!../common',
            '../common/*',
            '!../common/entitlement',
            '!../common/machine-states',
            '!../common/machine-token',
            '!../common/reason-codes',
            '!../common/search-attributes',
          ],
          allowTypeImports: true,
          message:
            'Workflow code imports values only from workflows/ and the pure shared modules; anything else as types.',
        },
      ],
      [
        ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code must be deterministic: no Node built-ins.' })),
        ...['zod', './schemas'].map((name) => ({
          name,
          allowTypeImports: true,
          message:
            'Types only: the SDK instantiates workflow modules once per cached workflow; zod costs ~1.1 MB each.',
        })),
      ],
      ['workflows/schemas.ts'],
    ),
  ];
}

export default tseslint.config(
  { ignores: ['node_modules/', '.tools/', '.data/', 'dist/', 'coverage/', '**/*.d.ts', 'supabase/functions/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['warn', 'error'] }],
    },
  },
  // Layer rules (README "Layers"): who may import whom. Each block lists a folder's production files and
  // what they must not reach; tests and test-support may reach anything (they wire the real thing).
  ...layerRules(),
  {
    files: ['scripts/**', 'bench/**', 'dev/**/cli.ts', '**/*.mjs', '**/*.js'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setInterval: 'readonly',
        setTimeout: 'readonly',
        module: 'writable',
        require: 'readonly',
        URL: 'readonly',
      },
    },
  },
);
