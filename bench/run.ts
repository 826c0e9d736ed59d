/**
 * passport-logto against bare Passport sessions, @logto/express and express-openid-connect, on
 * loopback against the bundled provider: authenticated requests with a cached token, sign-ins,
 * a refresh storm and memory per session. Prints a Markdown report and writes bench/RESULTS.md.
 *
 *   npm run bench            (node --expose-gc --import tsx bench/run.ts)
 *
 * BENCH_RUNS and BENCH_SECONDS change the load runs (default 10 runs of 2 s per app); BENCH_QUICK=1
 * shortens everything, for checking the script itself. Not a test: .ci/run does not run it.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { API_RESOURCE, startProvider } from '../test/support/provider.js';
import type { VariantName } from './protocol.js';
import { render, type RunResults } from './report.js';
import {
  measureMemory,
  measureSignIns,
  measureStorm,
  measureThroughput,
  type MemoryResult,
  type Settings,
  type SignInResult,
  type StormResult,
} from './sections.js';
import { startTarget, type Target, type TargetOptions } from './targets.js';

const quick = process.env.BENCH_QUICK === '1';
const settings: Settings = {
  // This machine's speed drifts by ±15% from one run to the next, every app alike: many short
  // runs, taking turns, compare apps measured seconds apart (see the paired ratios in report.ts).
  runs: Number(process.env.BENCH_RUNS ?? (quick ? 2 : 10)),
  seconds: Number(process.env.BENCH_SECONDS ?? (quick ? 1 : 2)),
  warmupSeconds: quick ? 1 : 2,
  connections: 10,
  signInRuns: quick ? 1 : 5,
  signInWarmup: quick ? 3 : 15,
  callbacksPerRun: quick ? 5 : 30,
  flowsPerRun: quick ? 4 : 20,
  signInConcurrency: 4,
  stormSize: 50,
  stormRuns: quick ? 1 : 3,
  stormTokenTtl: 2,
  sessions: quick ? 1_000 : 10_000,
};

const libraries: VariantName[] = ['passport-logto', 'logto-express', 'express-openid-connect'];
const targetOptions: TargetOptions = { resource: API_RESOURCE, scopes: ['email', 'read:items'] };
const log = (message: string): void => {
  process.stderr.write(`${message}\n`);
};

const startedAt = new Date();
const started = performance.now();

const provider = await startProvider();
const signInResults: SignInResult[] = [];
const stormResults: StormResult[] = [];
const memoryResults: MemoryResult[] = [];
let throughput: RunResults['throughput'];

try {
  // Sign-ins first, so that each app's first sign-in is also the first time its process talks to
  // the provider (discovery and JWKS); the same processes then serve the load runs.
  log('starting the apps');
  const targets = new Map<VariantName, Target>();
  try {
    for (const variant of ['bare', ...libraries] as VariantName[]) targets.set(variant, await startTarget(provider, variant, targetOptions));
    log('3. sign-in');
    signInResults.push(...(await measureSignIns(libraries.map((variant) => targets.get(variant) as Target), provider, settings)));
    log('1-2. authenticated requests');
    throughput = await measureThroughput(targets, provider, settings);
  } finally {
    await Promise.all([...targets.values()].map((target) => target.app.close()));
  }

  log('4. refresh storm');
  const shortLived = await startProvider({ accessTokenTtl: settings.stormTokenTtl });
  try {
    for (const variant of libraries) stormResults.push(await measureStorm(shortLived, variant, targetOptions, settings));
  } finally {
    await shortLived.close();
  }

  log('5. memory');
  for (const variant of ['bare', ...libraries] as VariantName[]) memoryResults.push(await measureMemory(provider, variant, targetOptions, settings));
} finally {
  await provider.close();
}

const results: RunResults = {
  settings,
  startedAt,
  durationSeconds: (performance.now() - started) / 1000,
  signIn: signInResults,
  throughput,
  storm: stormResults,
  memory: memoryResults,
};
const markdown = render(results);
process.stdout.write(markdown);
if (quick) {
  log('BENCH_QUICK=1: bench/RESULTS.md left as it was');
} else {
  const path = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
  writeFileSync(path, markdown);
  log(`written to ${path}`);
}
