/**
 * Issue 23's benchmark: on each host other than Express, the cached-token route of passport-logto
 * (set up as the README's section for that host) against the bare host with Passport answering the
 * same body, in instructions per request counted by callgrind exactly as bench/instructions.ts
 * counts Express's (its countWindow). The target is at most 1.05× bare's instructions.
 *
 *   npm run build && node --import tsx bench/hosts.ts
 *
 * HOSTS=koa,nest-express picks hosts (default: all); WARMUP (requests, default 2000) and CYCLES
 * (full collections per window, default 2) size the windows; NATIVE_SECONDS (default 4) the native
 * run that calibrates the clock. With every host measured, the section and its Targets row are
 * written into bench/RESULTS.md (NO_WRITE=1: printed only). passport-logto is loaded from dist/,
 * the published build: a dist/ older than lib/ is refused.
 *
 * PROFILE=1 instead profiles both apps of each host natively (V8's sampling profiler, PROFILE_SECONDS
 * of load, default 4): where passport-logto's app spends more than bare's, by package and by function.
 *
 * One process per app (two apps of a host counted at the same time), so each count is one
 * process's: two processes of one app agree to within about 0.5% (bench/RESULTS.md, section 7).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { TestBrowser } from '../test/support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../test/support/provider/index.js';
import { countWindow, missingTool, type CountedWindow, type InstructionKinds, type InstructionSettings } from './instructions.js';
import { assertLoopback } from './load.js';
import { analyse, type Analysis, type Profile } from './profile.js';
import { AppProcess, type Counters, type HostConfig, type HostName } from './protocol.js';
import { signIn, type Target } from './targets.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const hostServer = fileURLToPath(new URL('./host-server.ts', import.meta.url));

/** Short names, for the Targets row. */
const shortLabels: Record<HostName, string> = {
  'nest-express': 'NestJS/Express',
  'nest-fastify': 'NestJS/Fastify',
  'fastify-secure-session': 'Fastify/secure-session',
  'fastify-session': 'Fastify/session',
  koa: 'Koa',
};

export const hostLabels: Record<HostName, string> = {
  'nest-express': 'NestJS 11 on Express (express-session)',
  'nest-fastify': 'NestJS 11 on Fastify (@fastify/session)',
  'fastify-secure-session': 'Fastify 5 + @fastify/passport + @fastify/secure-session',
  'fastify-session': 'Fastify 5 + @fastify/passport + @fastify/session',
  koa: 'Koa 3 + koa-passport + koa-session',
};
const allHosts = Object.keys(hostLabels) as HostName[];
/** Issue 23: passport-logto's cached-token route costs at most this many times bare's instructions. */
const targetRatio = 1.05;

export interface HostRun {
  host: HostName;
  bare: CountedWindow;
  logto: CountedWindow;
  /** Store reads per request of passport-logto's app, natively and in the counted window. */
  nativeReadsPerRequest: number;
  countedReadsPerRequest: number;
  /** passport-logto's app, natively and under callgrind (before its window), and the clock's slowdown. */
  nativeRps: number;
  valgrindRps: number;
  clockScale: number;
}

/** The newest modification time of the files under `directory`, or the oldest with `oldest`. */
function fileTimes(directory: string, pick: (a: number, b: number) => number, start: number): number {
  let result = start;
  for (const entry of readdirSync(directory, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) result = pick(result, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return result;
}

/** dist/ must be built from the lib/ of this checkout: none of its files older than any of lib/'s. */
function assertFreshBuild(): void {
  let oldestBuilt: number;
  try {
    oldestBuilt = fileTimes(join(root, 'dist'), Math.min, Infinity);
  } catch {
    throw new Error('dist/ is missing: run `npm run build` first (the benchmark loads the published build).');
  }
  const newestSource = fileTimes(join(root, 'lib'), Math.max, 0);
  if (newestSource > oldestBuilt) throw new Error('dist/ is older than lib/: run `npm run build` first (the benchmark loads the published build).');
}

interface HostTarget extends Target {
  outFile: string | undefined;
}

/** Starts one app of `host` (under callgrind with `outFile`), configured and signed in; its cookie header. */
async function startHostApp(
  provider: TestProvider,
  host: HostName,
  variant: HostConfig['variant'],
  extra: Pick<HostConfig, 'user' | 'tokenLength'>,
  outFile?: string,
): Promise<{ target: HostTarget; browser: TestBrowser; headers: Record<string, string> }> {
  const app = await AppProcess.start(outFile === undefined ? undefined : { outFile }, hostServer);
  try {
    assertLoopback(app.url);
    const registered =
      variant === 'bare' ? { appId: 'unused', appSecret: 'unused' } : await provider.registerApp({ redirectUris: [`${app.url}/callback`], postLogoutRedirectUris: [`${app.url}/`] });
    const config: HostConfig = {
      host,
      variant,
      url: app.url,
      endpoint: provider.endpoint,
      appId: registered.appId,
      appSecret: registered.appSecret,
      resource: API_RESOURCE,
      scopes: ['email', 'read:items'],
      ...extra,
    };
    await app.send({ type: 'configure-host', config });
    const target: HostTarget = { variant, url: app.url, app, signInPath: '/sign-in', callbackPath: '/callback', outFile };
    const browser = await signIn(target, provider);
    // The session cookie, and koa-session's signature of it; nothing of the provider's.
    const cookie = ['bench.sid', 'bench.sid.sig']
      .flatMap((name) => {
        const value = browser.cookie('127.0.0.1', name);
        return value === undefined ? [] : [`${name}=${value}`];
      })
      .join('; ');
    if (!cookie) throw new Error(`${host} ${variant}: no session cookie after sign-in`);
    return { target, browser, headers: { cookie, accept: 'application/json' } };
  } catch (error) {
    await app.close();
    throw error;
  }
}

/** The token route once, as the load will ask it: its body must be `{ tokenLength }`. */
async function tokenLengthOf(target: HostTarget, headers: Record<string, string>): Promise<number> {
  const response = await fetch(`${target.url}/api/token`, { headers });
  const body = (await response.json()) as { tokenLength?: unknown };
  if (response.status !== 200 || typeof body.tokenLength !== 'number') throw new Error(`${target.variant} /api/token answered ${response.status} ${JSON.stringify(body)}`);
  return body.tokenLength;
}

/** Requests per second and the app's counters over a load of `seconds` (or `amount` requests). */
async function loadFor(target: HostTarget, headers: Record<string, string>, limit: { seconds: number } | { amount: number }): Promise<{ rps: number; before: Counters; after: Counters }> {
  const url = `${target.url}/api/token`;
  assertLoopback(url);
  const before = await target.app.send<Counters>({ type: 'counters' });
  const started = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    autocannon({ url, connections: 10, headers, ...('seconds' in limit ? { duration: limit.seconds } : { amount: limit.amount }) }, (error, done) => (error ? reject(error) : resolve(done)));
  });
  const seconds = (performance.now() - started) / 1000;
  const after = await target.app.send<Counters>({ type: 'counters' });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${target.variant}: ${result.non2xx} non-2xx answers and ${result.errors} errors under load`);
  return { rps: (after.requests - before.requests) / seconds, before, after };
}

/** Requests at which the speed under callgrind is measured, after the warm-up (and again before the window). */
const calibrationRequests = 500;

const forcedIn = (window: CountedWindow): number => (window.last.forcedGcs ?? 0) - (window.first.forcedGcs ?? 0);

const readsPerRequest = (before: Counters, after: Counters): number => ((after.storeReads ?? 0) - (before.storeReads ?? 0)) / (after.requests - before.requests);

async function measureHost(provider: TestProvider, host: HostName, settings: InstructionSettings & { nativeSeconds: number; collectAfter: number }, directory: string, log: (message: string) => void): Promise<HostRun> {
  // Natively first: how fast passport-logto's app answers, and how often it then reads the store.
  log(`  ${host}: native run`);
  const native = await startHostApp(provider, host, 'passport-logto', {});
  let nativeRps: number;
  let nativeReadsPerRequest: number;
  try {
    // As warm as under callgrind: the same warm-up, then the calibration's requests.
    await loadFor(native.target, native.headers, { amount: settings.warmupRequests + calibrationRequests });
    const measured = await loadFor(native.target, native.headers, { seconds: settings.nativeSeconds });
    nativeRps = measured.rps;
    nativeReadsPerRequest = readsPerRequest(measured.before, measured.after);
  } finally {
    await native.target.app.close();
  }

  log(`  ${host}: under callgrind`);
  const logto = await startHostApp(provider, host, 'passport-logto', {}, join(directory, `${host}-passport-logto.out`));
  try {
    const tokenLength = await tokenLengthOf(logto.target, logto.headers);
    // Bare Passport logs in the very user passport-logto's sign-in put in the session.
    const user = await logto.target.app.send<Record<string, unknown> | null>({ type: 'logged-in-user' });
    if (!user) throw new Error(`${host}: passport-logto's app logged no user in`);
    const bare = await startHostApp(provider, host, 'bare', { user, tokenLength }, join(directory, `${host}-bare.out`));
    try {
      if ((await tokenLengthOf(bare.target, bare.headers)) !== tokenLength) throw new Error(`${host}: the two apps answer different bodies`);
      // Warmed up, the speed under callgrind with both apps loaded, as in the window: the clock of both slows by as much.
      const both = [logto, bare];
      await Promise.all(both.map(({ target, headers }) => loadFor(target, headers, { amount: settings.warmupRequests })));
      const [calibration] = await Promise.all(both.map(({ target, headers }) => loadFor(target, headers, { amount: calibrationRequests })));
      const valgrindRps = (calibration as { rps: number }).rps;
      const clockScale = Math.max(1, nativeRps / valgrindRps);
      await Promise.all(both.map(({ target }) => target.app.send({ type: 'clock-scale', scale: clockScale })));
      await Promise.all(both.map(({ target }) => target.app.send({ type: 'collect-after', requests: settings.collectAfter })));
      // countWindow's own warm-up, now short: the code is warm, the slowed clock settles.
      const windowSettings = { ...settings, warmupRequests: calibrationRequests };
      const [logtoWindow, bareWindow] = (await Promise.all(
        both.map(({ target, headers }) => countWindow(target.app, `${target.url}/api/token`, headers, windowSettings, target.outFile as string)),
      )) as [CountedWindow, CountedWindow];
      return {
        host,
        bare: bareWindow,
        logto: logtoWindow,
        nativeReadsPerRequest,
        countedReadsPerRequest: readsPerRequest(logtoWindow.first, logtoWindow.last),
        nativeRps,
        valgrindRps,
        clockScale,
      };
    } finally {
      await bare.target.app.close();
    }
  } finally {
    await logto.target.app.close();
  }
}

/**
 * Where passport-logto's app spends more than bare's, natively: V8's sampling profiler in each app
 * under the same load (bench/profile.ts), microseconds per request by package (self time), and
 * passport-logto's functions with their callees. Time, not instructions: for finding what to cut.
 */
async function profileHost(provider: TestProvider, host: HostName, seconds: number, log: (message: string) => void): Promise<string> {
  const profiled: Partial<Record<HostConfig['variant'], Analysis>> = {};
  let handOver: Pick<HostConfig, 'user' | 'tokenLength'> = {};
  for (const variant of ['passport-logto', 'bare'] as const) {
    log(`  ${host}: profiling ${variant}`);
    const started = await startHostApp(provider, host, variant, handOver);
    try {
      if (variant === 'passport-logto') {
        const tokenLength = await tokenLengthOf(started.target, started.headers);
        const user = await started.target.app.send<Record<string, unknown> | null>({ type: 'logged-in-user' });
        handOver = { tokenLength, ...(user ? { user } : {}) };
      }
      await loadFor(started.target, started.headers, { seconds: 2 });
      await started.target.app.send({ type: 'profile-start', intervalMicros: 100 });
      const measured = await loadFor(started.target, started.headers, { seconds });
      const profile = await started.target.app.send<Profile>({ type: 'profile-stop' });
      profiled[variant] = analyse(profile, measured.after.requests - measured.before.requests);
    } finally {
      await started.target.app.close();
    }
  }
  const ours = profiled['passport-logto'] as Analysis;
  const theirs = profiled.bare as Analysis;
  const owners = [...new Set([...Object.keys(ours.selfByOwner), ...Object.keys(theirs.selfByOwner)])].filter((owner) => owner !== '(idle)');
  const byOwner = owners
    .map((owner) => ({ owner, ours: ours.selfByOwner[owner] ?? 0, theirs: theirs.selfByOwner[owner] ?? 0 }))
    .sort((a, b) => b.ours - b.theirs - (a.ours - a.theirs))
    .map(({ owner, ours: mine, theirs: bare }) => `${owner} ${mine.toFixed(1)} against ${bare.toFixed(1)}`);
  const functions = Object.entries(ours.inclusiveByLibFunction)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([name, micros]) => `${name} ${micros.toFixed(1)}`);
  return [
    `### ${hostLabels[host]}`,
    `CPU µs per request: passport-logto ${ours.busy.toFixed(1)}, bare ${theirs.busy.toFixed(1)}; under passport-logto's code ${ours.underLib.toFixed(1)}.`,
    `By package (self, passport-logto against bare, largest difference first): ${byOwner.join('; ')}.`,
    `passport-logto's functions, callees included: ${functions.join('; ')}.`,
    '',
  ].join('\n');
}

const thousands = (value: number): string => `${Math.round(value / 1000).toLocaleString('en-US')}k`;
const ratioOf = (run: HostRun): number => run.logto.instructions / run.bare.instructions;
const kindsText = (kinds: InstructionKinds): string => `${thousands(kinds.gc)} / ${thousands(kinds.compiler)} / ${thousands(kinds.rest)}`;
const readsText = (value: number): string => (value === 0 ? '0' : `1 per ${Math.round(1 / value).toLocaleString('en-US')}`);

export const sectionHeading = '## Every host: instructions per request';
export const targetLabel = 'Every host (issue 23): cached-token route at most 1.05× the bare host with Passport, in instructions per request';

/** The Targets table's row: the worst host's ratio decides. */
export function targetRow(runs: HostRun[]): string {
  const ratios = runs.map((run) => `${shortLabels[run.host]} ×${ratioOf(run).toFixed(2)}`);
  const worst = Math.max(...runs.map(ratioOf));
  const missed = runs.filter((run) => ratioOf(run) > targetRatio).map((run) => hostLabels[run.host]);
  const verdict = missed.length === 0 ? '**met**' : `**not met** (${missed.length} of ${runs.length} hosts)`;
  return `| ${targetLabel} | ${ratios.join('; ')} (callgrind, one process per app; worst ×${worst.toFixed(2)}) | ${verdict} |`;
}

export function renderSection(runs: HostRun[], settings: InstructionSettings & { collectAfter: number }): string {
  const rows = runs.map((run) => {
    const ratio = ratioOf(run);
    return `| ${hostLabels[run.host]} | ${thousands(run.bare.instructions)} | ${thousands(run.logto.instructions)} | ×${ratio.toFixed(2)} | ${ratio <= targetRatio ? '**met**' : '**not met**'} | ${kindsText(run.bare.kinds)} | ${kindsText(run.logto.kinds)} | ${run.bare.requests.toLocaleString('en-US')}, ${run.logto.requests.toLocaleString('en-US')} | ${forcedIn(run.bare)}, ${forcedIn(run.logto)} | ${readsText(run.nativeReadsPerRequest)} | ${readsText(run.countedReadsPerRequest)} | ${run.bare.failures + run.logto.failures} |`;
  });
  return [
    sectionHeading,
    '',
    'Issue 23\'s benchmark: on each host other than Express (Express is section 7), the cached-token route of',
    'passport-logto against the bare host with Passport answering the same body (`{ tokenLength }`). The target is',
    `at most ${targetRatio}× bare's instructions per request. \`npm run build && node --import tsx bench/hosts.ts\` (bench/hosts.ts) wrote`,
    `this section on ${new Date().toISOString().slice(0, 10)}; \`npm run bench\` keeps it as it was (with its Targets row).`,
    '',
    '- **passport-logto** as the README\'s section for the host sets it up, loaded from dist/ (the published build): the',
    '  adapter, the session check mounted after Passport\'s session, the guard on the route (`logto.authenticated()`,',
    '  `LogtoAuthenticatedGuard()` on NestJS), and `getAccessToken(resource)` in the handler. Fastify and Koa keep the tokens in',
    '  `MemoryTokenStore`, as the README does; NestJS in the session store (express-session\'s or @fastify/session\'s',
    '  MemoryStore). On NestJS\'s Fastify platform the session check is passport-logto/fastify\'s `session()`, a `preHandler`',
    '  hook after Passport\'s, as docs/nestjs.md mounts silent sign-in there.',
    '- **Bare**: the same host, session plugin and settings, Passport (`@fastify/passport`, koa-passport, or Passport through',
    '  @nestjs/passport), the user passport-logto\'s sign-in logged in (handed over from its session), and a guard that asks',
    '  `isAuthenticated()` (NestJS\'s session recipe: a `CanActivate` guard).',
    '',
    `Counted as in section 7: each app in its own process under callgrind, ${settings.warmupRequests.toLocaleString('en-US')} warm-up requests (then ${calibrationRequests} that`,
    `measure its speed, see below, and ${calibrationRequests} more with the clock slowed), then from the end of one`,
    `full collection to the end of the ${settings.cycles}${settings.cycles === 2 ? 'nd' : 'th'} after it, under a steady load of ${settings.connections} connections; the two apps of a host`,
    'at the same time. **One process per app** here (section 7 ran 3): two processes of one app agree to within about 0.5%.',
    `Some of these apps promote so little to V8's old space that they go many thousands of requests without a full`,
    `collection; in the window, one is forced (\`gc()\`) after ${settings.collectAfter.toLocaleString('en-US')} requests without one, in both apps alike (the table says how many were).`,
    '',
    'Under valgrind a process runs some 50 times slower, but Date.now does not: passport-logto\'s per-process copy of a',
    'record answers for 2 s, so the copy would serve far fewer requests than natively and the store would be read far',
    'more often per request. Each host\'s passport-logto app first ran natively for a few seconds, to measure its req/s and',
    'its store reads per request; under callgrind both apps\' Date.now then advanced that many times slower (the native',
    'req/s over the req/s under callgrind, both apps loaded), so that a copy serves about as many requests as natively.',
    'The table gives the store reads per request natively and in the counted window.',
    '',
    '| host | bare, instructions per request | passport-logto | ratio | ≤1.05× | bare: GC / compilers / rest | passport-logto: GC / compilers / rest | requests counted (bare, passport-logto) | full collections forced (bare, passport-logto) | store reads per request natively | store reads per request counted | non-2xx |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    ...runs.map(
      (run) =>
        `- ${hostLabels[run.host]}: passport-logto natively ${Math.round(run.nativeRps).toLocaleString('en-US')} req/s, under callgrind ${run.valgrindRps.toFixed(1)} req/s; its clock ran ${run.clockScale.toFixed(0)}× slower.`,
    ),
    '',
  ].join('\n');
}

/** This section and its Targets row in a bench/RESULTS.md text, if it has them. */
export function hostsSectionOf(text: string): { section: string; row: string } | undefined {
  const start = text.indexOf(sectionHeading);
  const row = text.split('\n').find((line) => line.startsWith(`| ${targetLabel} |`));
  if (start < 0 || row === undefined) return undefined;
  const next = text.indexOf('\n## ', start + sectionHeading.length);
  return { section: next >= 0 ? text.slice(start, next + 1) : text.slice(start), row };
}

/**
 * `text` (bench/RESULTS.md) with this section before "Reading the numbers" and its row at the end of
 * the Targets table, in place of earlier ones. bench/run.ts keeps them through its rewrite.
 */
export function withHostsSection(text: string, section: string, row: string): string {
  const start = text.indexOf(sectionHeading);
  if (start >= 0) {
    const next = text.indexOf('\n## ', start + sectionHeading.length);
    text = text.slice(0, start) + (next >= 0 ? text.slice(next + 1) : '');
  }
  const reading = text.indexOf('## Reading the numbers');
  text = reading >= 0 ? `${text.slice(0, reading)}${section.trimEnd()}\n\n${text.slice(reading)}` : `${text.trimEnd()}\n\n${section}`;
  const lines = text.split('\n').filter((line) => !line.startsWith(`| ${targetLabel} |`));
  const header = lines.findIndex((line) => line.startsWith('| target (issue 10) |'));
  if (header >= 0) {
    let end = header + 2;
    while (lines[end]?.startsWith('|')) end += 1;
    lines.splice(end, 0, row);
  }
  return lines.join('\n');
}

const standalone = process.argv[1] !== undefined && /bench[/\\]hosts\.ts$/.test(process.argv[1]);
if (standalone) {
  assertFreshBuild();
  const missing = await missingTool();
  if (missing) throw new Error(missing);
  const hosts = process.env.HOSTS ? (process.env.HOSTS.split(',') as HostName[]) : allHosts;
  const unknown = hosts.filter((host) => !allHosts.includes(host));
  if (unknown.length > 0) throw new Error(`unknown host(s) ${unknown.join(', ')}; known: ${allHosts.join(', ')}`);
  const settings = {
    warmupRequests: Number(process.env.WARMUP ?? 2000),
    cycles: Number(process.env.CYCLES ?? 2),
    processes: 1,
    connections: 10,
    nativeSeconds: Number(process.env.NATIVE_SECONDS ?? 4),
    collectAfter: Number(process.env.COLLECT_AFTER ?? 2500),
  };
  const log = (message: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
  if (process.env.PROFILE === '1') {
    const provider = await startProvider();
    try {
      for (const host of hosts) process.stdout.write(`${await profileHost(provider, host, Number(process.env.PROFILE_SECONDS ?? 4), log)}\n`);
    } finally {
      await provider.close();
    }
    process.exit(0);
  }
  const directory = mkdtempSync(join(tmpdir(), 'passport-logto-hosts-'));
  const provider = await startProvider();
  const runs: HostRun[] = [];
  try {
    for (const host of hosts) {
      const run = await measureHost(provider, host, settings, directory, log);
      log(`  ${host}: bare ${thousands(run.bare.instructions)}, passport-logto ${thousands(run.logto.instructions)}, ×${ratioOf(run).toFixed(3)}`);
      runs.push(run);
    }
  } finally {
    await provider.close();
    if (process.env.KEEP_DUMPS === '1') log(`callgrind dumps kept in ${directory}`);
    else rmSync(directory, { recursive: true, force: true });
  }
  const section = renderSection(runs, settings);
  const row = targetRow(runs);
  process.stdout.write(`${section}\n${row}\n\n${JSON.stringify(runs.map(({ bare, logto, ...rest }) => ({ ...rest, bare: { ...bare, first: undefined, last: undefined }, logto: { ...logto, first: undefined, last: undefined } })), null, 2)}\n`);
  if (hosts.length === allHosts.length && process.env.NO_WRITE !== '1') {
    const file = join(root, 'bench', 'RESULTS.md');
    writeFileSync(file, withHostsSection(readFileSync(file, 'utf8'), section, row));
    log('bench/RESULTS.md: section and Targets row written');
  }
}
