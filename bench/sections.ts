/** The five measurements. Each returns raw per-run numbers; the report takes medians. */
import { createHash } from 'node:crypto';
import os from 'node:os';
import { TestBrowser } from '../test/support/http-client.js';
import type { TestProvider } from '../test/support/provider/index.js';
import { load, median, pinToCpu, pool, sleep, type LoadResult } from './load.js';
import { analyse, type Analysis, type Profile } from './profile.js';
import type { AppProcess, MemoryReport, VariantName } from './protocol.js';
import {
  backChannel,
  completeCallback,
  cookieBytes,
  countKinds,
  prepareCallback,
  sessionCookie,
  sessionIdOf,
  signIn,
  startInstances,
  startTarget,
  type RequestKind,
  type Target,
  type TargetOptions,
} from './targets.js';

export interface Settings {
  runs: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  signInRuns: number;
  /** Whole sign-ins per app before the measured runs. */
  signInWarmup: number;
  callbacksPerRun: number;
  flowsPerRun: number;
  signInConcurrency: number;
  stormSize: number;
  stormRuns: number;
  /** Seconds an access token lives at the storm's provider. */
  stormTokenTtl: number;
  /** App processes of the multi-instance storm. */
  stormInstances: number;
  /** Seconds of profiled load per route. */
  profileSeconds: number;
  /** Processes of bare Passport and of passport-logto in the side-by-side rounds (each app), and rounds per pair of them. */
  sideBySideProcesses: number;
  sideBySideRounds: number;
  sessions: number;
}

const progress = (message: string): void => {
  process.stderr.write(`${message}\n`);
};

async function getOk(browser: TestBrowser, url: string): Promise<number> {
  const response = await browser.get(url);
  if (response.status !== 200) throw new Error(`${url}: ${response.status} ${response.text.slice(0, 300)}`);
  return (JSON.parse(response.text) as { tokenLength: number }).tokenLength;
}

// ---------------------------------------------------------------------------------------------
// (3) Sign-in cost
// ---------------------------------------------------------------------------------------------

export interface SignInResult {
  variant: VariantName;
  /** Back-channel requests of the first sign-in in a fresh process, by kind. */
  first: Record<RequestKind, number>;
  /** Back-channel requests per sign-in over every later sign-in of the section, by kind. */
  perLater: Record<RequestKind, number>;
  laterSignIns: number;
  callbacksSequential: number[];
  callbacksConcurrent: number[];
  /** Milliseconds of each sequential callback request, all runs. */
  callbackLatencies: number[];
  flowsSequential: number[];
  flowsConcurrent: number[];
}

async function prepareMany(target: Target, provider: TestProvider, count: number): Promise<{ browser: TestBrowser; url: string }[]> {
  const prepared: { browser: TestBrowser; url: string }[] = [];
  for (let index = 0; index < count; index += 1) {
    const browser = new TestBrowser();
    prepared.push({ browser, url: await prepareCallback(browser, target, provider) });
  }
  return prepared;
}

/** Adds up request counts by kind. */
function addKinds(total: Record<RequestKind, number>, counts: Record<RequestKind, number>): void {
  for (const kind of Object.keys(counts) as RequestKind[]) total[kind] += counts[kind];
}

/** One run for one app: callbacks alone and whole sign-ins, one at a time and several at once. */
async function signInRun(target: Target, provider: TestProvider, settings: Settings, result: SignInResult): Promise<number> {
  // The callback request alone: codes are fetched first (they live 60 s), then redeemed.
  let prepared = await prepareMany(target, provider, settings.callbacksPerRun);
  let started = performance.now();
  for (const { browser, url } of prepared) {
    const before = performance.now();
    await completeCallback(browser, target, url);
    result.callbackLatencies.push(performance.now() - before);
  }
  result.callbacksSequential.push((prepared.length * 1000) / (performance.now() - started));

  prepared = await prepareMany(target, provider, settings.callbacksPerRun);
  started = performance.now();
  await pool(prepared.length, settings.signInConcurrency, async (index) => {
    const { browser, url } = prepared[index] as { browser: TestBrowser; url: string };
    await completeCallback(browser, target, url);
  });
  result.callbacksConcurrent.push((prepared.length * 1000) / (performance.now() - started));

  // Whole sign-ins: the app's redirect, the provider's login form, and the callback.
  started = performance.now();
  for (let index = 0; index < settings.flowsPerRun; index += 1) await signIn(target, provider);
  result.flowsSequential.push((settings.flowsPerRun * 1000) / (performance.now() - started));
  started = performance.now();
  await pool(settings.flowsPerRun, settings.signInConcurrency, async () => {
    await signIn(target, provider);
  });
  result.flowsConcurrent.push((settings.flowsPerRun * 1000) / (performance.now() - started));
  return 2 * settings.callbacksPerRun + 2 * settings.flowsPerRun;
}

/**
 * Call on processes that have not talked to the provider yet: each one's first sign-in is counted
 * apart (discovery, JWKS). The runs then take turns between the apps, as the load runs do, and
 * each run's requests to the provider are counted for its app alone.
 */
export async function measureSignIns(targets: Target[], provider: TestProvider, settings: Settings): Promise<SignInResult[]> {
  const zero = (): Record<RequestKind, number> => ({ discovery: 0, jwks: 0, 'token: code': 0, 'token: refresh': 0, other: 0 });
  const results = targets.map(
    (target): SignInResult => ({
      variant: target.variant,
      first: zero(),
      perLater: zero(),
      laterSignIns: 0,
      callbacksSequential: [],
      callbacksConcurrent: [],
      callbackLatencies: [],
      flowsSequential: [],
      flowsConcurrent: [],
    }),
  );
  const totals = targets.map(zero);
  for (const [index, target] of targets.entries()) {
    const result = results[index] as SignInResult;
    provider.resetRequests();
    await signIn(target, provider);
    result.first = countKinds(provider.requests);
    // Warm-up, for the app and for the provider's code paths; counted with the later sign-ins.
    provider.resetRequests();
    for (let count = 0; count < settings.signInWarmup; count += 1) await signIn(target, provider);
    result.laterSignIns += settings.signInWarmup;
    addKinds(totals[index] as Record<RequestKind, number>, countKinds(provider.requests));
  }
  for (let run = 0; run < settings.signInRuns; run += 1) {
    for (let step = 0; step < targets.length; step += 1) {
      const index = (run + step) % targets.length;
      const target = targets[index] as Target;
      const result = results[index] as SignInResult;
      progress(`  sign-in run ${run + 1}/${settings.signInRuns} ${target.variant}`);
      provider.resetRequests();
      result.laterSignIns += await signInRun(target, provider, settings, result);
      addKinds(totals[index] as Record<RequestKind, number>, countKinds(provider.requests));
    }
  }
  for (const [index, result] of results.entries()) {
    const total = totals[index] as Record<RequestKind, number>;
    result.perLater = Object.fromEntries(Object.entries(total).map(([kind, count]) => [kind, count / result.laterSignIns])) as Record<RequestKind, number>;
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// (1) and (2) Authenticated requests with a cached access token
// ---------------------------------------------------------------------------------------------

export type LoadKey = 'bare' | 'bare-me' | 'passport-logto' | 'passport-logto-me' | 'logto-express' | 'express-openid-connect';

/** A load run, with the CPU time the app's process spent per answered request. */
export interface MeasuredLoad extends LoadResult {
  /** Microseconds. */
  cpuPerRequest: number;
}

export interface ThroughputResult {
  key: LoadKey;
  runs: MeasuredLoad[];
}

async function measuredLoad(app: AppProcess, url: string, cookie: string, seconds: number, connections: number): Promise<MeasuredLoad> {
  const before = await app.send<number>({ type: 'cpu' });
  const measured = await load({ url, cookie, seconds, connections });
  const after = await app.send<number>({ type: 'cpu' });
  return { ...measured, cpuPerRequest: (after - before) / measured.requests };
}

/** Rounds in which a route and its baseline were loaded at the same moment, on one shared core. */
export interface SideBySideResult {
  key: LoadKey;
  reference: LoadKey;
  /** With the indices of the two processes (of the app's own, and of its baseline's) that took part. */
  rounds: { ours: MeasuredLoad; theirs: MeasuredLoad; processes: [number, number] }[];
}

export interface ThroughputSection {
  results: ThroughputResult[];
  sideBySide: SideBySideResult[];
  /** How the processes were placed on the CPUs, or why they were not. */
  placement: string;
  /** Requests that reached the provider while the load ran (a cached token needs none). */
  providerRequestsDuringLoad: number;
}

/**
 * `extra` holds fresh processes of bare Passport and of passport-logto for the side-by-side
 * rounds (not the ones measured taking turns, which have run far longer); each is signed in here.
 */
export async function measureThroughput(
  targets: Map<VariantName, Target>,
  provider: TestProvider,
  settings: Settings,
  extra: Map<VariantName, Target[]> = new Map(),
): Promise<ThroughputSection> {
  const plan: { key: LoadKey; variant: VariantName; path: string; tokenExpected: boolean }[] = [
    { key: 'bare', variant: 'bare', path: '/api/token', tokenExpected: false },
    { key: 'passport-logto', variant: 'passport-logto', path: '/api/token', tokenExpected: true },
    { key: 'bare-me', variant: 'bare', path: '/api/me', tokenExpected: false },
    { key: 'passport-logto-me', variant: 'passport-logto', path: '/api/me', tokenExpected: false },
    { key: 'logto-express', variant: 'logto-express', path: '/api/token', tokenExpected: true },
    { key: 'express-openid-connect', variant: 'express-openid-connect', path: '/api/token', tokenExpected: true },
  ];
  const loads: { key: LoadKey; url: string; cookie: string; app: AppProcess }[] = [];
  const browsers = new Map<VariantName, TestBrowser>();
  for (const entry of plan) {
    const target = targets.get(entry.variant);
    if (!target) throw new Error(`no ${entry.variant} app`);
    let browser = browsers.get(entry.variant);
    if (!browser) {
      browser = await signIn(target, provider);
      browsers.set(entry.variant, browser);
    }
    const url = `${target.url}${entry.path}`;
    // The first request fetches (and caches) the resource's token where the sign-in did not.
    const response = await browser.get(url);
    if (response.status !== 200) throw new Error(`${url}: ${response.status} ${response.text.slice(0, 300)}`);
    const tokenLength = (JSON.parse(response.text) as { tokenLength?: number }).tokenLength ?? 0;
    if (entry.tokenExpected && tokenLength === 0) throw new Error(`${entry.key}: no access token`);
    loads.push({ key: entry.key, url, cookie: sessionCookie(browser, target), app: target.app });
  }

  // The apps on the last CPU, the load generator and the provider (this process) on the first:
  // an app under load then has a core of its own, and never competes with autocannon for it.
  const cpus = os.availableParallelism();
  const appCpu = cpus - 1;
  const pinned = cpus >= 2 && [...targets.values()].every((target) => pinToCpu(target.app.pid, appCpu)) && pinToCpu(process.pid, 0);
  const placement = pinned
    ? `the apps pinned to CPU ${appCpu}, autocannon and the provider to CPU 0 (taskset)`
    : `not pinned (${cpus < 2 ? 'one CPU' : 'taskset unavailable'}): the apps, autocannon and the provider share the CPUs`;

  provider.resetRequests();
  for (const entry of loads) {
    progress(`  warm-up ${entry.key}`);
    await load({ url: entry.url, cookie: entry.cookie, seconds: settings.warmupSeconds, connections: settings.connections });
  }
  const results = loads.map((entry): ThroughputResult => ({ key: entry.key, runs: [] }));
  // A route and its baseline run back to back, seconds apart, so that their ratio sees the same
  // machine; which of the two goes first alternates, and each round starts with another group.
  // (The other libraries, secondary, are compared with the token route's baseline of the same round.)
  const groups = [[0, 1], [2, 3], [4], [5]];
  for (let run = 0; run < settings.runs; run += 1) {
    for (let step = 0; step < groups.length; step += 1) {
      const group = groups[(run + step) % groups.length] as number[];
      for (const index of run % 2 === 0 ? group : [...group].reverse()) {
        const entry = loads[index] as (typeof loads)[number];
        progress(`  load run ${run + 1}/${settings.runs} ${entry.key}`);
        const measured = await measuredLoad(entry.app, entry.url, entry.cookie, settings.seconds, settings.connections);
        (results[index] as ThroughputResult).runs.push(measured);
      }
    }
  }

  // Side by side: a route and its baseline loaded at the same moment, their two processes sharing
  // one core (with pinning), so that whatever the machine does to one it does to the other; the
  // scheduler gives each half of the core, and each app's req/s is what its cost per request allows.
  // Two processes of the very same app differ by a few percent (heap layout, JIT), so several
  // processes of each app take part, every one paired with every other app's.
  const sides = new Map<VariantName, { app: AppProcess; cookie: string; url: string }[]>();
  for (const variant of ['bare', 'passport-logto'] as const) {
    const signedIn = [];
    for (const target of extra.get(variant) ?? []) {
      const browser = await signIn(target, provider);
      await getOk(browser, `${target.url}/api/token`);
      if (pinned) pinToCpu(target.app.pid, appCpu);
      const cookie = sessionCookie(browser, target);
      // Fresh processes, each with the same warm-up, so that none is more compiled than another.
      progress(`  warm-up ${variant}, process ${signedIn.length + 1}`);
      for (const path of ['/api/token', '/api/me']) {
        await load({ url: `${target.url}${path}`, cookie, seconds: 2 * settings.warmupSeconds, connections: settings.connections });
      }
      signedIn.push({ app: target.app, cookie, url: target.url });
    }
    sides.set(variant, signedIn);
  }
  const sideBySide: SideBySideResult[] = [];
  for (const [key, reference, path] of [['passport-logto', 'bare', '/api/token'], ['passport-logto-me', 'bare-me', '/api/me']] as const) {
    const result: SideBySideResult = { key, reference, rounds: [] };
    const ours = sides.get('passport-logto') ?? [];
    const theirs = sides.get('bare') ?? [];
    for (const [i, one] of ours.entries()) {
      for (const [j, other] of theirs.entries()) {
        for (let run = 0; run < settings.sideBySideRounds; run += 1) {
          progress(`  side by side ${key}: process ${i + 1} against ${reference} process ${j + 1}, round ${run + 1}/${settings.sideBySideRounds}`);
          const loadOne = (): Promise<MeasuredLoad> => measuredLoad(one.app, `${one.url}${path}`, one.cookie, settings.seconds, settings.connections);
          const loadOther = (): Promise<MeasuredLoad> => measuredLoad(other.app, `${other.url}${path}`, other.cookie, settings.seconds, settings.connections);
          // Which autocannon starts first alternates.
          const [oursRun, theirsRun] = run % 2 === 0 ? await Promise.all([loadOne(), loadOther()]) : ((await Promise.all([loadOther(), loadOne()])).reverse() as [MeasuredLoad, MeasuredLoad]);
          result.rounds.push({ ours: oursRun, theirs: theirsRun, processes: [i, j] });
        }
      }
    }
    sideBySide.push(result);
  }
  // Processes started later (the storms' instances) inherit this process's CPUs: give it all back.
  if (pinned) pinToCpu(process.pid, `0-${cpus - 1}`);
  return { results, sideBySide, placement, providerRequestsDuringLoad: backChannel(provider.requests).length };
}

// ---------------------------------------------------------------------------------------------
// (6) Where the CPU goes: V8's profiler in the app process, bare Passport and passport-logto
// ---------------------------------------------------------------------------------------------

export interface ProfileResult {
  key: LoadKey;
  requests: number;
  rps: number;
  analysis: Analysis;
}

export async function measureProfiles(targets: Map<VariantName, Target>, provider: TestProvider, settings: Settings): Promise<ProfileResult[]> {
  const plan: { key: LoadKey; variant: VariantName; path: string }[] = [
    { key: 'bare', variant: 'bare', path: '/api/token' },
    { key: 'passport-logto', variant: 'passport-logto', path: '/api/token' },
    { key: 'bare-me', variant: 'bare', path: '/api/me' },
    { key: 'passport-logto-me', variant: 'passport-logto', path: '/api/me' },
  ];
  const cookies = new Map<VariantName, string>();
  const results: ProfileResult[] = [];
  for (const entry of plan) {
    const target = targets.get(entry.variant);
    if (!target) throw new Error(`no ${entry.variant} app`);
    let cookie = cookies.get(entry.variant);
    if (cookie === undefined) {
      const browser = await signIn(target, provider);
      await getOk(browser, `${target.url}/api/token`);
      cookie = sessionCookie(browser, target);
      cookies.set(entry.variant, cookie);
    }
    progress(`  profile ${entry.key}`);
    const url = `${target.url}${entry.path}`;
    await load({ url, cookie, seconds: 1, connections: settings.connections });
    // Sampling every 100 µs: fine enough for functions of a few µs, at some cost to throughput.
    await target.app.send({ type: 'profile-start', intervalMicros: 100 });
    const measured = await load({ url, cookie, seconds: settings.profileSeconds, connections: settings.connections });
    const profile = await target.app.send<Profile>({ type: 'profile-stop' });
    results.push({ key: entry.key, requests: measured.requests, rps: measured.rps, analysis: analyse(profile, measured.requests) });
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// (4) Refresh storm
// ---------------------------------------------------------------------------------------------

export interface StormRun {
  /** Milliseconds from sending the 50 requests until the last answer. */
  elapsed: number;
  ok: number;
  statuses: Record<string, number>;
  refreshes: number;
  jwks: number;
  other: number;
}

export interface StormResult {
  variant: VariantName;
  runs: StormRun[];
  /** A single request after the last storm, once its token expired too: does the grant still work? */
  aliveAfter: boolean;
  aliveStatus: number;
  error?: string;
}

export async function measureStorm(provider: TestProvider, variant: VariantName, options: TargetOptions, settings: Settings): Promise<StormResult> {
  const target = await startTarget(provider, variant, { ...options, accessTokenExpiryMargin: 0 });
  const result: StormResult = { variant, runs: [], aliveAfter: false, aliveStatus: 0 };
  try {
    const browser = await signIn(target, provider);
    const url = `${target.url}/api/token`;
    await getOk(browser, url);
    let tokenAt = performance.now();
    // Past the token's lifetime, with a second to spare for whole-second expiry arithmetic.
    const expiry = settings.stormTokenTtl * 1000 + 1500;
    for (let run = 1; run <= settings.stormRuns; run += 1) {
      progress(`  storm ${variant}: run ${run}/${settings.stormRuns}`);
      await sleep(expiry - (performance.now() - tokenAt));
      // Open the connections first (a page that does not touch the tokens), so that all requests of
      // the storm reach the app before the first refresh returns, instead of trickling in while
      // sockets connect and finding a session that an early request already refreshed.
      await Promise.all(Array.from({ length: settings.stormSize }, () => browser.get(`${target.url}/`)));
      provider.resetRequests();
      const started = performance.now();
      // One browser: express-openid-connect's rotated cookie is kept for the next run, as a browser would.
      const statuses = await Promise.all(Array.from({ length: settings.stormSize }, async () => (await browser.get(url)).status));
      const elapsed = performance.now() - started;
      tokenAt = performance.now();
      const kinds = countKinds(provider.requests);
      const counted: Record<string, number> = {};
      for (const status of statuses) counted[status] = (counted[status] ?? 0) + 1;
      result.runs.push({
        elapsed,
        ok: statuses.filter((status) => status === 200).length,
        statuses: counted,
        refreshes: kinds['token: refresh'],
        jwks: kinds.jwks,
        other: kinds.discovery + kinds['token: code'] + kinds.other,
      });
    }
    await sleep(expiry - (performance.now() - tokenAt));
    const after = await browser.get(url);
    result.aliveStatus = after.status;
    result.aliveAfter = after.status === 200;
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    await target.app.close();
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// (4b) Refresh storm over several instances sharing Redis
// ---------------------------------------------------------------------------------------------

export interface InstanceStormRun {
  elapsed: number;
  ok: number;
  statuses: Record<string, number>;
  /** Refresh requests that reached the provider. */
  refreshes: number;
  /** Refresh requests each instance sent, as counted in its own process. */
  perInstance: number[];
}

export interface InstanceStormResult {
  /** `RedisTokenStore`, or the default: the connect-redis session store. */
  tokenStore: 'redis-token-store' | 'session-store';
  instances: number;
  runs: InstanceStormRun[];
  /** The longest time between a refresh token's first use and a later one (ms), over every refresh of the section. */
  latestReuse: number;
  /** Refresh tokens that reached the provider again more than the grace after their first use. */
  lateReuses: number;
  /** Grants the provider revoked during the section. */
  revokedGrants: number;
  aliveAfter: boolean;
  aliveStatus: number;
  error?: string;
}

/** Refresh requests to the provider, with the refresh token each carried and when it arrived. */
function refreshesAt(provider: TestProvider): { refreshToken: string; at: number }[] {
  return provider.requests
    .filter((request) => request.path === '/oidc/token' && request.params.grant_type === 'refresh_token')
    .map((request) => ({ refreshToken: request.params.refresh_token ?? '', at: request.at }));
}

/**
 * 50 requests of one session, spread round-robin over `instances` processes, for a resource
 * token that has just expired; repeated, each time after the previous storm's token expired.
 */
export async function measureInstanceStorm(
  provider: TestProvider,
  redisUrl: string,
  tokenStore: InstanceStormResult['tokenStore'],
  options: TargetOptions,
  settings: Settings,
): Promise<InstanceStormResult> {
  const result: InstanceStormResult = {
    tokenStore,
    instances: settings.stormInstances,
    runs: [],
    latestReuse: 0,
    lateReuses: 0,
    revokedGrants: 0,
    aliveAfter: false,
    aliveStatus: 0,
  };
  const targets = await startInstances(provider, settings.stormInstances, {
    ...options,
    accessTokenExpiryMargin: 0,
    redisUrl,
    redisTokenStore: tokenStore === 'redis-token-store',
  });
  const grantsBefore = provider.revokedGrants();
  // Every refresh of the section, storms and the check after them, for the grace check.
  const refreshes: { refreshToken: string; at: number }[] = [];
  try {
    const browser = await signIn(targets[0] as Target, provider);
    const urls = targets.map((target) => `${target.url}/api/token`);
    provider.resetRequests();
    await getOk(browser, urls[1] as string);
    refreshes.push(...refreshesAt(provider));
    let tokenAt = performance.now();
    const expiry = settings.stormTokenTtl * 1000 + 1500;
    for (let run = 1; run <= settings.stormRuns; run += 1) {
      progress(`  storm over ${settings.stormInstances} instances, ${tokenStore}: run ${run}/${settings.stormRuns}`);
      await sleep(expiry - (performance.now() - tokenAt));
      // Connections to every instance first, as in the single-process storm.
      await Promise.all(Array.from({ length: settings.stormSize }, (_, index) => browser.get(`${targets[index % targets.length]?.url}/`)));
      const sentBefore = await Promise.all(targets.map((target) => target.app.send<number>({ type: 'refreshes' })));
      provider.resetRequests();
      const started = performance.now();
      const statuses = await Promise.all(
        Array.from({ length: settings.stormSize }, async (_, index) => (await browser.get(urls[index % urls.length] as string)).status),
      );
      const elapsed = performance.now() - started;
      tokenAt = performance.now();
      const sentAfter = await Promise.all(targets.map((target) => target.app.send<number>({ type: 'refreshes' })));
      const seen = refreshesAt(provider);
      refreshes.push(...seen);
      const counted: Record<string, number> = {};
      for (const status of statuses) counted[status] = (counted[status] ?? 0) + 1;
      result.runs.push({
        elapsed,
        ok: statuses.filter((status) => status === 200).length,
        statuses: counted,
        refreshes: seen.length,
        perInstance: sentAfter.map((after, index) => after - (sentBefore[index] ?? 0)),
      });
    }
    // Once more after the last storm's token expired, on another instance: the grant must live.
    await sleep(expiry - (performance.now() - tokenAt));
    provider.resetRequests();
    const after = await browser.get(urls[2 % urls.length] as string);
    refreshes.push(...refreshesAt(provider));
    result.aliveStatus = after.status;
    result.aliveAfter = after.status === 200;
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    await Promise.all(targets.map((target) => target.app.close()));
  }
  const firstUse = new Map<string, number>();
  for (const { refreshToken, at } of refreshes) {
    const first = firstUse.get(refreshToken) ?? at;
    firstUse.set(refreshToken, first);
    result.latestReuse = Math.max(result.latestReuse, at - first);
    if (at - first >= graceMs) result.lateReuses += 1;
  }
  result.revokedGrants = provider.revokedGrants() - grantsBefore;
  return result;
}

/** Logto accepts a used refresh token again for 3 s, and revokes the grant after. */
const graceMs = 3000;

// ---------------------------------------------------------------------------------------------
// (5) The session express-session loads per request, and memory per sign-in
// ---------------------------------------------------------------------------------------------

export interface MemoryResult {
  /** µs of express-session's JSON work per request on this session (see measureSessionWork); set by run.ts. */
  sessionWork?: number;
  variant: VariantName;
  /** The session as the store keeps it (JSON): what express-session loads on every request. */
  sessionJson: string | undefined;
  /** Every other entry in the store for the same sign-in (passport-logto's record and marks), by key. */
  otherEntries: Record<string, string>;
  /** Bytes of session the browser sends with every request (express-openid-connect). */
  cookieBytes: number;
  before: MemoryReport | undefined;
  after: MemoryReport | undefined;
}

/** passport-logto's default user for the seeded user, as its session keeps it. */
export function passportUserOf(result: MemoryResult): Record<string, unknown> | undefined {
  if (!result.sessionJson) return undefined;
  return (JSON.parse(result.sessionJson) as { passport?: { user?: Record<string, unknown> } }).passport?.user;
}

export async function measureMemory(provider: TestProvider, variant: VariantName, options: TargetOptions, settings: Settings): Promise<MemoryResult> {
  progress(`  session and memory ${variant}`);
  const target = await startTarget(provider, variant, options);
  try {
    const browser = await signIn(target, provider);
    // The steady state: the API resource's token is stored too.
    await getOk(browser, `${target.url}/api/token`);
    if (variant === 'express-openid-connect') {
      return { variant, sessionJson: undefined, otherEntries: {}, cookieBytes: cookieBytes(browser), before: undefined, after: undefined };
    }
    const sessionId = sessionIdOf(browser);
    const entries = await target.app.send<Record<string, string>>({ type: 'store-entries' });
    const sessionJson = entries[sessionId];
    if (sessionJson === undefined) throw new Error(`${variant}: the session is not in the store`);
    const { [sessionId]: _session, ...otherEntries } = entries;
    const before = await target.app.send<MemoryReport>({ type: 'memory' });
    await target.app.send<number>({ type: 'clone-store', total: settings.sessions });
    const after = await target.app.send<MemoryReport>({ type: 'memory' });
    return { variant, sessionJson, otherEntries, cookieBytes: 0, before, after };
  } finally {
    await target.app.close();
  }
}

/**
 * The JSON work express-session 1.19 and its MemoryStore do per request on a session of this JSON,
 * as their source does it: MemoryStore.get parses it, express-session hashes it (SHA-1 of its JSON
 * without the cookie) when it is loaded and again at the end to see whether it changed, and
 * MemoryStore.touch parses it and serializes it again.
 */
function sessionWork(json: string): number {
  const withoutCookie = (session: Record<string, unknown>): string =>
    JSON.stringify(session, function (this: unknown, key: string, value: unknown) {
      return this === session && key === 'cookie' ? undefined : value;
    });
  const hash = (session: Record<string, unknown>): string => createHash('sha1').update(withoutCookie(session), 'utf8').digest('hex');
  const loaded = JSON.parse(json) as Record<string, unknown>;
  const first = hash(loaded);
  const changed = hash(loaded) !== first;
  const touched = JSON.parse(json) as Record<string, unknown>;
  touched.cookie = loaded.cookie;
  return JSON.stringify(touched).length + (changed ? 1 : 0);
}

/**
 * Microseconds of CPU that work costs per request for each session, measured in a loop, the
 * sessions taking turns: a cost too small for the load runs to resolve on a busy machine.
 */
export function measureSessionWork(sessions: Record<string, string>, rounds = 7, iterations = 40_000): Record<string, number> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(sessions).map((name) => [name, []]));
  let sink = 0;
  for (let round = 0; round < rounds; round += 1) {
    for (const [name, json] of Object.entries(sessions)) {
      const before = process.cpuUsage();
      for (let index = 0; index < iterations; index += 1) sink += sessionWork(json);
      const used = process.cpuUsage(before);
      samples[name]?.push((used.user + used.system) / iterations);
    }
  }
  if (sink === 0) throw new Error('unreachable: keeps the loop from being optimized away');
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}
