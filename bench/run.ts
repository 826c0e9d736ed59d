/**
 * passport-logto against bare Passport sessions, @logto/express and express-openid-connect, on
 * loopback against the bundled provider: authenticated requests with a cached token and on a
 * route that reads only `req.user`, sign-ins, refresh storms (in one process, and over three
 * processes sharing a real Redis), the session loaded per request and memory per sign-in, and
 * instructions per request counted by valgrind's callgrind (bench/instructions.ts), the measure
 * that this machine's drift does not move. Prints a Markdown report and writes bench/RESULTS.md.
 *
 *   npm run bench            (node --expose-gc --import tsx bench/run.ts): the full run, for releases (44 minutes)
 *   npm run bench -- --quick  the headline ratios against bare Passport only, in a few minutes (bench/quick.ts)
 *
 * BENCH_RUNS and BENCH_SECONDS change the load runs (default 14 rounds of 2 s per route); BENCH_QUICK=1
 * shortens everything, for checking the script itself, and leaves callgrind out, as BENCH_INSTRUCTIONS=0 does.
 * Not a test: .ci/run does not run it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

// `npm run bench -- --quick`: the headline ratios only, in a few minutes (bench/quick.ts).
if (process.argv.includes('--quick')) {
  await import('./quick.js');
  process.exit(0);
}

import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { API_RESOURCE, startProvider } from '../test/support/provider/index.js';
import { startRedis } from '../test/support/redis.js';
import type { VariantName } from './protocol.js';
import { render, type RunResults } from './report.js';
import {
  measureInstanceStorm,
  measureProfiles,
  measureSessionWork,
  measureMemory,
  measureSignIns,
  measureStorm,
  measureThroughput,
  passportUserOf,
  type InstanceStormResult,
  type MemoryResult,
  type Settings,
  type SignInResult,
  type StormResult,
} from './sections.js';
import { startTarget, type Target, type TargetOptions } from './targets.js';
import { measureInstructions, type InstructionResult, type InstructionSettings } from './instructions.js';
import { hostsSectionOf, withHostsSection } from './hosts.js';

const quick = process.env.BENCH_QUICK === '1';
const settings: Settings = {
  // This machine's speed drifts by ±15% from one run to the next, every app alike: many short
  // runs, taking turns, compare apps measured seconds apart (see the paired ratios in report.ts).
  runs: Number(process.env.BENCH_RUNS ?? (quick ? 2 : 14)),
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
  stormInstances: 3,
  profileSeconds: quick ? 1 : 4,
  sideBySideProcesses: quick ? 2 : 5,
  sideBySideRounds: quick ? 1 : 2,
  sessions: quick ? 1_000 : 10_000,
};

// Under callgrind a request costs some 40 times its usual time: three processes per app and route,
// about 20 minutes in all. BENCH_INSTRUCTIONS=0 leaves the section out (BENCH_QUICK=1 does too).
const instructionSettings: InstructionSettings = { warmupRequests: 4000, cycles: 2, processes: 3, connections: 10 };
const countInstructions = process.env.BENCH_INSTRUCTIONS === undefined ? !quick : process.env.BENCH_INSTRUCTIONS !== '0';

const libraries: VariantName[] = ['passport-logto', 'logto-express', 'express-openid-connect'];
const targetOptions: TargetOptions = { resource: API_RESOURCE, scopes: ['email', 'read:items'] };
const log = (message: string): void => {
  process.stderr.write(`${message}\n`);
};

const startedAt = new Date();
// Other jobs share this machine: the load they put on it is part of the result.
const loadBefore = os.loadavg();
const started = performance.now();

const provider = await startProvider();
const signInResults: SignInResult[] = [];
const stormResults: StormResult[] = [];
const instanceStormResults: InstanceStormResult[] = [];
const memoryResults: MemoryResult[] = [];
let throughput: RunResults['throughput'];
let profiles: RunResults['profiles'] = [];
let instructions: InstructionResult = { available: false, reason: 'left out (BENCH_INSTRUCTIONS=0 or BENCH_QUICK=1)' };

try {
  // The session first: passport-logto's user object is then given to bare Passport, so that the
  // two sessions (and the two apps' work on them) differ only by what passport-logto adds.
  log('5. session per request, memory per sign-in');
  const ours = await measureMemory(provider, 'passport-logto', targetOptions, settings);
  const user = passportUserOf(ours);
  if (!user) throw new Error('passport-logto\'s session holds no user');
  const bareOptions: TargetOptions = { ...targetOptions, user };
  memoryResults.push(await measureMemory(provider, 'bare', bareOptions, settings), ours);
  for (const variant of ['logto-express', 'express-openid-connect'] as VariantName[]) memoryResults.push(await measureMemory(provider, variant, targetOptions, settings));

  // express-session's JSON work on the two sessions, in a loop (the sessions taking turns).
  const work = measureSessionWork(Object.fromEntries(memoryResults.flatMap((result) => (result.sessionJson ? [[result.variant, result.sessionJson]] : []))));
  for (const result of memoryResults) if (work[result.variant] !== undefined) result.sessionWork = work[result.variant];

  // Sign-ins in fresh processes, so that each app's first sign-in is also the first time its
  // process talks to the provider (discovery and JWKS).
  log('3. sign-in');
  const signInTargets: Target[] = [];
  try {
    for (const variant of libraries) signInTargets.push(await startTarget(provider, variant, targetOptions));
    signInResults.push(...(await measureSignIns(signInTargets, provider, settings)));
  } finally {
    await Promise.all(signInTargets.map((target) => target.app.close()));
  }

  // The load runs in fresh processes too, each holding one signed-in session: bare Passport's
  // process would otherwise hold far fewer sessions (and a smaller heap) than the others.
  log('1-2. authenticated requests');
  const targets = new Map<VariantName, Target>();
  const extra = new Map<VariantName, Target[]>();
  try {
    for (const variant of ['bare', ...libraries] as VariantName[]) {
      targets.set(variant, await startTarget(provider, variant, variant === 'bare' ? bareOptions : targetOptions));
    }
    // Fresh processes of the two apps for the side-by-side rounds.
    for (let index = 0; index < settings.sideBySideProcesses; index += 1) {
      for (const [variant, options] of [['bare', bareOptions], ['passport-logto', targetOptions]] as const) {
        const started = await startTarget(provider, variant, options);
        extra.set(variant, [...(extra.get(variant) ?? []), started]);
      }
    }
    throughput = await measureThroughput(targets, provider, settings, extra);
    log('6. where the CPU goes');
    profiles = await measureProfiles(targets, provider, settings);
  } finally {
    await Promise.all([...targets.values(), ...[...extra.values()].flat()].map((target) => target.app.close()));
  }

  if (countInstructions) {
    log('7. instructions per request (callgrind)');
    instructions = await measureInstructions(provider, { bare: bareOptions, 'passport-logto': targetOptions }, instructionSettings, log);
  }

  log('4. refresh storm');
  const shortLived = await startProvider({ accessTokenTtl: settings.stormTokenTtl });
  try {
    for (const variant of libraries) stormResults.push(await measureStorm(shortLived, variant, targetOptions, settings));
    // A real redis-server, for connect-redis sessions and RedisTokenStore.
    const redis = await startRedis();
    try {
      for (const tokenStore of ['redis-token-store', 'session-store'] as const) {
        instanceStormResults.push(await measureInstanceStorm(shortLived, redis.url, tokenStore, targetOptions, settings));
      }
    } finally {
      await redis.stop();
    }
  } finally {
    await shortLived.close();
  }
} finally {
  await provider.close();
}

const results: RunResults = {
  settings,
  startedAt,
  durationSeconds: (performance.now() - started) / 1000,
  loadBefore,
  loadAfter: os.loadavg(),
  signIn: signInResults,
  throughput,
  storm: stormResults,
  instanceStorm: instanceStormResults,
  profiles,
  memory: memoryResults,
  instructions,
};
const markdown = render(results);
process.stdout.write(markdown);
if (quick) {
  log('BENCH_QUICK=1: bench/RESULTS.md left as it was');
} else {
  const path = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
  // bench/hosts.ts's section (every other host) comes from its own run: kept as it was.
  const hosts = existsSync(path) ? hostsSectionOf(readFileSync(path, 'utf8')) : undefined;
  writeFileSync(path, hosts ? withHostsSection(markdown, hosts.section, hosts.row) : markdown);
  log(`written to ${path}`);
}
