/** The five measurements. Each returns raw per-run numbers; the report takes medians. */
import { TestBrowser } from '../test/support/http-client.js';
import type { TestProvider } from '../test/support/provider.js';
import { load, pool, sleep, type LoadResult } from './load.js';
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

export type LoadKey = 'bare' | 'passport-logto-session' | 'passport-logto' | 'logto-express' | 'express-openid-connect';

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

export interface ThroughputSection {
  results: ThroughputResult[];
  /** Requests that reached the provider while the load ran (a cached token needs none). */
  providerRequestsDuringLoad: number;
}

export async function measureThroughput(targets: Map<VariantName, Target>, provider: TestProvider, settings: Settings): Promise<ThroughputSection> {
  const plan: { key: LoadKey; variant: VariantName; path: string; tokenExpected: boolean }[] = [
    { key: 'bare', variant: 'bare', path: '/api/token', tokenExpected: false },
    { key: 'passport-logto-session', variant: 'passport-logto', path: '/api/session-only', tokenExpected: false },
    { key: 'passport-logto', variant: 'passport-logto', path: '/api/token', tokenExpected: true },
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
    const tokenLength = await getOk(browser, url);
    if (entry.tokenExpected && tokenLength === 0) throw new Error(`${entry.key}: no access token`);
    loads.push({ key: entry.key, url, cookie: sessionCookie(browser, target), app: target.app });
  }

  provider.resetRequests();
  for (const entry of loads) {
    progress(`  warm-up ${entry.key}`);
    await load({ url: entry.url, cookie: entry.cookie, seconds: settings.warmupSeconds, connections: settings.connections });
  }
  const results = loads.map((entry): ThroughputResult => ({ key: entry.key, runs: [] }));
  for (let run = 0; run < settings.runs; run += 1) {
    // Each round starts with another app, so that drift over the section does not favour one.
    for (let step = 0; step < loads.length; step += 1) {
      const index = (run + step) % loads.length;
      const entry = loads[index] as (typeof loads)[number];
      progress(`  load run ${run + 1}/${settings.runs} ${entry.key}`);
      const measured = await measuredLoad(entry.app, entry.url, entry.cookie, settings.seconds, settings.connections);
      (results[index] as ThroughputResult).runs.push(measured);
    }
  }
  return { results, providerRequestsDuringLoad: backChannel(provider.requests).length };
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
// (5) Memory
// ---------------------------------------------------------------------------------------------

export interface MemoryResult {
  variant: VariantName;
  /** The session as the store keeps it (JSON), or undefined for a cookie-only session. */
  sessionJson: string | undefined;
  /** Bytes of session the browser sends with every request (express-openid-connect). */
  cookieBytes: number;
  before: MemoryReport | undefined;
  after: MemoryReport | undefined;
}

export async function measureMemory(provider: TestProvider, variant: VariantName, options: TargetOptions, settings: Settings): Promise<MemoryResult> {
  progress(`  memory ${variant}`);
  const target = await startTarget(provider, variant, options);
  try {
    const browser = await signIn(target, provider);
    // The steady state: the API resource's token is in the session too.
    await getOk(browser, `${target.url}/api/token`);
    if (variant === 'express-openid-connect') {
      return { variant, sessionJson: undefined, cookieBytes: cookieBytes(browser), before: undefined, after: undefined };
    }
    const sessionId = sessionIdOf(browser);
    const sessionJson = await target.app.send<string>({ type: 'session-json', sessionId });
    const before = await target.app.send<MemoryReport>({ type: 'memory' });
    await target.app.send<number>({ type: 'clone-session', sessionId, total: settings.sessions });
    const after = await target.app.send<MemoryReport>({ type: 'memory' });
    return { variant, sessionJson, cookieBytes: 0, before, after };
  } finally {
    await target.app.close();
  }
}
