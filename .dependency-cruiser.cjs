/**
 * The architecture, checked by `npm test` (`depcruise src commands`). docs/architecture.md draws it.
 *
 * Each layer may import itself and the layers listed before it, never one after it: an arrow
 * only points down. Type-only imports count (`tsPreCompilationDeps`), because a type borrowed
 * from a higher layer ties the two just as a value does.
 */
const LAYERS = [
  // Job, states, failure kinds, review decisions: types and pure rules.
  ['domain', ['^src/domain/']],
  ['logger', ['^src/logger[.]ts$']],
  // Every rule a prompt must pass: length, blocked terms, exact text, composition.
  ['prompts', ['^src/prompts/']],
  ['config', ['^src/config(-schema)?[.]ts$']],
  // Opening the storage, its health, the state processes share, the key-value contract.
  ['storage', ['^src/storage/']],
  // The PPInfra API client: knows no jobs, no Discord.
  ['ppinfra', ['^src/ppinfra/']],
  // Metrics and the health endpoint: every layer above counts things.
  ['ops', ['^src/ops/']],
  // The usage ledger and the history of images: records the jobs write.
  ['usage', ['^src/usage/']],
  // The job service, its two engines, limits, the poll schedule.
  ['jobs', ['^src/jobs/']],
  ['moderation', ['^src/moderation/']],
  // Everything that imports discord.js.
  ['discord', ['^src/discord/']],
  // One module per slash or context-menu command.
  ['commands', ['^commands/']],
  // The composition root and the ways to run it: the bot, the shards, the CLIs.
  ['app', ['^src/(main|sharded|app|startup|node-flags)[.]ts$', '^src/cli/']],
];

const PRODUCT = '^(src|commands)/';

const layerRules = LAYERS.map(([name, paths], i) => ({
  name: `${name}-imports-only-down`,
  comment: `${name} may import ${LAYERS.slice(0, i + 1).map(([n]) => n).join(', ')}: nothing above it.`,
  severity: 'error',
  from: { path: paths },
  to: {
    path: PRODUCT,
    pathNot: LAYERS.slice(0, i + 1).flatMap(([, p]) => p),
  },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'engines-stay-apart',
      comment:
        'The two job engines (jobs/in-process, jobs/bullmq) share only the engine-neutral jobs/ modules: neither imports the other.',
      severity: 'error',
      from: { path: '^src/jobs/(in-process|bullmq)/' },
      to: { path: '^src/jobs/(in-process|bullmq)/', pathNot: '^src/jobs/$1/' },
    },
    {
      name: 'only-the-scheduler-picks-an-engine',
      comment:
        'Outside the engines, only jobs/scheduler.ts imports one: everything else talks to the JobService contract (jobs/service.ts).',
      severity: 'error',
      from: { path: PRODUCT, pathNot: ['^src/jobs/(in-process|bullmq)/', '^src/jobs/scheduler[.]ts$'] },
      to: { path: '^src/jobs/(in-process|bullmq)/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle makes two modules one: neither can be read, tested or changed alone.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-test-code-in-product',
      comment: 'The product never imports the tests, their fakes or the benchmarks.',
      severity: 'error',
      from: { path: PRODUCT },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'no-dev-dependencies-in-product',
      comment: 'The image installs production dependencies only; a type-only import is erased and may use a dev dependency.',
      severity: 'error',
      from: { path: PRODUCT },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'Every import resolves: proves the explicit .ts specifiers are read, so the rules above see every edge.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
