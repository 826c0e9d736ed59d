/** Renders one run's results as Markdown: what bench/RESULTS.md holds and what the script prints. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { median, percentile } from './load.js';
import type { VariantName } from './protocol.js';
import type { InstanceStormResult, LoadKey, ProfileResult, MeasuredLoad, MemoryResult, Settings, SignInResult, StormResult, ThroughputSection } from './sections.js';
import { meanOf, type InstructionResult } from './instructions.js';

export interface RunResults {
  settings: Settings;
  startedAt: Date;
  durationSeconds: number;
  /** The 1-, 5- and 15-minute load averages just before the run, and the machine's cores. */
  loadBefore: number[];
  /** The same, just after. */
  loadAfter: number[];
  signIn: SignInResult[];
  throughput: ThroughputSection;
  storm: StormResult[];
  instanceStorm: InstanceStormResult[];
  profiles: ProfileResult[];
  memory: MemoryResult[];
  /** Instructions per request under callgrind (bench/instructions.ts). */
  instructions: InstructionResult;
}

const names: Record<VariantName, string> = {
  bare: 'Passport alone',
  'passport-logto': 'passport-logto',
  'logto-express': '@logto/express',
  'express-openid-connect': 'express-openid-connect',
};

const loadLabels: Record<LoadKey, string> = {
  bare: 'Passport alone, `/api/token`: `req.isAuthenticated()` (baseline of the token route)',
  'passport-logto': 'passport-logto, `/api/token`: `logto.authenticated()` + `req.logto.getAccessToken(resource)`',
  'bare-me': 'Passport alone, `/api/me`: reads `req.user` (baseline of the `req.user` route)',
  'passport-logto-me': 'passport-logto, `/api/me`: reads `req.user`, no guard',
  'logto-express': '@logto/express, `/api/token`: `withLogto({ getAccessToken: true, resource })`',
  'express-openid-connect': 'express-openid-connect, `/api/token`: `requiresAuth()` + `req.oidc.accessToken`',
};

/** Each load's baseline: the bare Passport route doing the same work without passport-logto. */
const baselineOf: Record<LoadKey, LoadKey> = {
  bare: 'bare',
  'passport-logto': 'bare',
  'bare-me': 'bare-me',
  'passport-logto-me': 'bare-me',
  'logto-express': 'bare',
  'express-openid-connect': 'bare',
};

const tokenStoreLabels: Record<InstanceStormResult['tokenStore'], string> = {
  'redis-token-store': '`tokenStore: new RedisTokenStore(nodeRedisClient)`',
  'session-store': 'default (no `tokenStore`): the connect-redis session store',
};

const require = createRequire(import.meta.url);

function versionOf(name: string, from?: string): string {
  try {
    const path = require.resolve(`${name}/package.json`, from ? { paths: [from] } : undefined);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    // Packages without ./package.json in their exports: find the folder by hand.
    try {
      const base = from ?? `${process.cwd()}/node_modules`;
      return (JSON.parse(readFileSync(`${base}/${name}/package.json`, 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  }
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

const number = (value: number, digits = 0): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';
const ratio = (value: number): string => (Number.isFinite(value) ? `×${value.toFixed(2)}` : 'n/a');
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const met = (ok: boolean): string => (ok ? '**met**' : '**not met**');
const requestsPer = (value: number): string => number(value, Number.isInteger(value) ? 0 : 2);

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

function redisVersion(): string {
  try {
    return execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function machine(results: RunResults): string {
  const cpus = os.cpus();
  const ownVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const libChanged = git(['status', '--porcelain', '--', 'lib']);
  const eocDirectory = `${process.cwd()}/node_modules/express-openid-connect/node_modules`;
  const eocOpenidClient = versionOf('openid-client', eocDirectory) === 'unknown' ? versionOf('openid-client') : versionOf('openid-client', eocDirectory);
  const source = commit ? `commit ${commit}${libChanged ? ', with uncommitted changes in lib/' : ''}` : 'not a git checkout';
  return table(
    ['', ''],
    [
      ['Date', results.startedAt.toISOString()],
      ['CPU', `${cpus[0]?.model ?? 'unknown'} × ${cpus.length}`],
      ['Memory', `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`],
      ['OS', `${os.type()} ${os.release()} ${os.arch()}`],
      ['Node.js', process.version],
      ['passport-logto', `${ownVersion} (${source}); openid-client ${versionOf('openid-client')}, jose ${versionOf('jose')}`],
      ['Passport, Express, express-session', `${versionOf('passport')}, ${versionOf('express')}, ${versionOf('express-session')}`],
      ['@logto/express', `${versionOf('@logto/express')} (@logto/node ${versionOf('@logto/node')}, @logto/client ${versionOf('@logto/client')})`],
      ['express-openid-connect', `${versionOf('express-openid-connect')} (openid-client ${eocOpenidClient})`],
      ['Load generator, provider', `autocannon ${versionOf('autocannon')}, oidc-provider ${versionOf('oidc-provider')}`],
      [
        'Load average (1, 5, 15 min)',
        `${results.loadBefore.map((value) => value.toFixed(2)).join(', ')} before the run, ${results.loadAfter.map((value) => value.toFixed(2)).join(', ')} after it; ${cpus.length} cores, shared with other jobs`,
      ],
      ['Redis', redisVersion()],
      ['connect-redis, node-redis', `${versionOf('connect-redis')}, ${versionOf('redis')}`],
      ['Whole run', `${Math.round(results.durationSeconds)} s`],
    ],
  );
}

interface LoadSummary {
  key: LoadKey;
  rps: number;
  p50: number;
  p99: number;
  cpu: number;
  failures: number;
  runs: number;
}

function loadSummaries(section: ThroughputSection): Map<LoadKey, LoadSummary> {
  return new Map(
    section.results.map((result) => [
      result.key,
      {
        key: result.key,
        rps: median(result.runs.map((run) => run.rps)),
        p50: median(result.runs.map((run) => run.p50)),
        p99: median(result.runs.map((run) => run.p99)),
        cpu: median(result.runs.map((run) => run.cpuPerRequest)),
        failures: result.runs.reduce((sum, run) => sum + run.failures, 0),
        runs: result.runs.length,
      },
    ]),
  );
}

/**
 * Round by round, `key`'s value over `reference`'s, measured seconds apart in the same round: the
 * machine's own drift (other tenants, CPU frequency) moves both, and mostly cancels out.
 */
interface Paired {
  median: number;
  /** Quartiles of the per-round ratios. */
  low: number;
  high: number;
}

function paired(section: ThroughputSection, key: LoadKey, reference: LoadKey, pick: (run: MeasuredLoad) => number): Paired {
  const runsOf = (wanted: LoadKey): MeasuredLoad[] => section.results.find((result) => result.key === wanted)?.runs ?? [];
  const ours = runsOf(key);
  const theirs = runsOf(reference);
  const ratios = ours.flatMap((run, round) => {
    const other = theirs[round];
    return other ? [pick(run) / pick(other)] : [];
  });
  return { median: median(ratios), low: percentile(ratios, 25), high: percentile(ratios, 75) };
}

/**
 * Round by round, a route's value over its baseline's when the two were loaded at the same moment,
 * sharing one core: the fairest pairing this machine allows. Undefined when the run has none.
 */
function sideBySide(section: ThroughputSection, key: LoadKey, pick: (run: MeasuredLoad) => number): Paired | undefined {
  const result = section.sideBySide.find((entry) => entry.key === key);
  if (!result || result.rounds.length === 0) return undefined;
  const ratios = result.rounds.map((round) => pick(round.ours) / pick(round.theirs));
  return { median: median(ratios), low: percentile(ratios, 25), high: percentile(ratios, 75) };
}

/** The req/s ratios of the rounds of each pair of processes, labelled by the two processes' numbers. */
function pairRatios(result: ThroughputSection['sideBySide'][number]): [string, number[]][] {
  const byPair = new Map<string, number[]>();
  for (const round of result.rounds) {
    const label = `${round.processes[0] + 1}/${round.processes[1] + 1}`;
    byPair.set(label, [...(byPair.get(label) ?? []), round.ours.rps / round.theirs.rps]);
  }
  return [...byPair];
}

function pairMedians(result: ThroughputSection['sideBySide'][number]): string {
  return pairRatios(result).map(([label, ratios]) => `${label}: ${median(ratios).toFixed(2)}`).join(', ');
}

const range = (value: Paired): string => `${ratio(value.median)} (quartiles of the rounds ${value.low.toFixed(2)}–${value.high.toFixed(2)})`;

/** A verdict, flagged when the line it is judged against lies between the quartiles of the rounds. */
function judged(ok: boolean, value: Paired, line: number): string {
  return value.low < line && line < value.high ? `${met(ok)}, within the spread of the rounds` : met(ok);
}

/** Session bytes: what express-session loads per request, by app. */
function sessionBytes(results: RunResults, variant: VariantName): number {
  const json = results.memory.find((result) => result.variant === variant)?.sessionJson;
  return json === undefined ? Number.NaN : Buffer.byteLength(json);
}

export function verdicts(results: RunResults): string {
  const loads = loadSummaries(results.throughput);
  const p99 = (key: LoadKey): number => loads.get(key)?.p99 ?? Number.NaN;
  const cpu = (key: LoadKey): number => loads.get(key)?.cpu ?? Number.NaN;
  const byRps = (key: LoadKey, reference: LoadKey): Paired => paired(results.throughput, key, reference, (run) => run.rps);
  const byP99 = (key: LoadKey, reference: LoadKey): Paired => paired(results.throughput, key, reference, (run) => run.p99);
  const tokenTurns = byRps('passport-logto', 'bare');
  const meTurns = byRps('passport-logto-me', 'bare-me');
  // The verdict on req/s comes from the side-by-side rounds where the run has them.
  const token = sideBySide(results.throughput, 'passport-logto', (run) => run.rps) ?? tokenTurns;
  const me = sideBySide(results.throughput, 'passport-logto-me', (run) => run.rps) ?? meTurns;
  const describeRps = (key: LoadKey, turns: Paired): string => {
    const side = sideBySide(results.throughput, key, (run) => run.rps);
    return side ? `side by side ${range(side)}; taking turns ${range(turns)}` : range(turns);
  };
  // Where callgrind ran, the req/s verdicts come from instructions per request: the same
  // comparison without this machine's drift (see section 7).
  const counted = (path: string): { ratio: number; text: string } | undefined => {
    if (!results.instructions.available) return undefined;
    const ours = meanOf(results.instructions.runs, 'passport-logto', path);
    const theirs = meanOf(results.instructions.runs, 'bare', path);
    if (!ours || !theirs) return undefined;
    const more = ours.instructions / theirs.instructions;
    return {
      ratio: 1 / more,
      text: `instructions per request ${ratio(more)} bare Passport's (${number(ours.instructions / 1000)}k against ${number(theirs.instructions / 1000)}k, callgrind), so ${ratio(1 / more)} its req/s on a saturated core`,
    };
  };
  const tokenCounted = counted('/api/token');
  const meCounted = counted('/api/me');
  const rpsVerdict = (countedRatio: { ratio: number } | undefined, side: Paired, line: number): string =>
    countedRatio ? `${met(countedRatio.ratio >= line)} (by instructions)` : judged(side.median >= line, side, line);
  const tokenP99 = byP99('passport-logto', 'bare');
  const meP99 = byP99('passport-logto-me', 'bare-me');
  const extraBytes = sessionBytes(results, 'passport-logto') - sessionBytes(results, 'bare');
  const ours = results.signIn.find((result) => result.variant === 'passport-logto');
  const tokenPerSignIn = ours ? ours.perLater['token: code'] + ours.perLater['token: refresh'] : Number.NaN;
  const otherPerSignIn = ours ? ours.perLater.discovery + ours.perLater.jwks + ours.perLater.other : Number.NaN;
  const firstOk = ours ? ours.first.discovery === 1 && ours.first.jwks === 1 && ours.first['token: code'] === 1 : false;
  const storm = results.storm.find((result) => result.variant === 'passport-logto');
  const refreshesPerStorm = storm?.runs.map((run) => run.refreshes) ?? [];
  const stormOk = storm !== undefined && storm.error === undefined && refreshesPerStorm.length > 0 && refreshesPerStorm.every((count) => count === 1)
    && storm.runs.every((run) => run.ok === results.settings.stormSize);
  const instanceStorm = (kind: InstanceStormResult['tokenStore']): InstanceStormResult | undefined =>
    results.instanceStorm.find((result) => result.tokenStore === kind);
  const allServed = (result: InstanceStormResult | undefined): boolean =>
    result !== undefined && result.error === undefined && result.runs.length > 0 && result.runs.every((run) => run.ok === results.settings.stormSize);
  const withRedis = instanceStorm('redis-token-store');
  const withDefault = instanceStorm('session-store');
  const describeStorm = (result: InstanceStormResult | undefined): string =>
    result === undefined
      ? 'not run'
      : `${result.runs.map((run) => `${run.refreshes} (${run.perInstance.join('+')})`).join(', ')} refresh(es) per storm (by instance in brackets), ${result.runs.length} storms; ${result.runs.every((run) => run.ok === results.settings.stormSize) ? `all ${results.settings.stormSize} answered 200 each time` : 'some answers were not 200'}${result.error ? `; error: ${result.error}` : ''}`;
  const graceOk = results.instanceStorm.length > 0 && results.instanceStorm.every((result) => result.lateReuses === 0 && result.revokedGrants === 0 && result.aliveAfter);
  return table(
    ['target (issue 10)', 'this run', 'verdict'],
    [
      [
        'Cached-token route: at least 0.95× bare Passport\'s req/s (paired)',
        `${tokenCounted ? `${tokenCounted.text}. Measured req/s: ` : ''}${describeRps('passport-logto', tokenTurns)}; app CPU ${number(cpu('passport-logto'))} µs against ${number(cpu('bare'))} µs per request (taking turns)`,
        rpsVerdict(tokenCounted, token, 0.95),
      ],
      [
        'Route that reads only `req.user`: at least 0.98× (paired)',
        `${meCounted ? `${meCounted.text}. Measured req/s: ` : ''}${describeRps('passport-logto-me', meTurns)}; app CPU ${number(cpu('passport-logto-me'))} µs against ${number(cpu('bare-me'))} µs per request (taking turns)`,
        rpsVerdict(meCounted, me, 0.98),
      ],
      [
        'p99 within 1.1× of bare Passport\'s',
        `token route ${range(tokenP99)} (medians ${number(p99('passport-logto'), 2)} ms against ${number(p99('bare'), 2)} ms); \`req.user\` route ${range(meP99)} (${number(p99('passport-logto-me'), 2)} ms against ${number(p99('bare-me'), 2)} ms)`,
        `token route ${judged(tokenP99.median <= 1.1, tokenP99, 1.1)}; \`req.user\` route ${judged(meP99.median <= 1.1, meP99, 1.1)}`,
      ],
      [
        'The session express-session loads per request: at most 150 bytes more than bare Passport\'s',
        `${number(extraBytes)} bytes more (${number(sessionBytes(results, 'passport-logto'))} against ${number(sessionBytes(results, 'bare'))}, the same \`req.user\` in both)`,
        met(extraBytes <= 150),
      ],
      [
        `Storm of ${results.settings.stormSize} requests over ${results.settings.stormInstances} instances, \`RedisTokenStore\`: exactly 1 refresh`,
        describeStorm(withRedis),
        met(allServed(withRedis) && (withRedis?.runs.every((run) => run.refreshes === 1) ?? false)),
      ],
      [
        `The same storm, default store (connect-redis session store): at most 1 refresh per instance`,
        describeStorm(withDefault),
        met(allServed(withDefault) && (withDefault?.runs.every((run) => run.perInstance.every((count) => count <= 1)) ?? false)),
      ],
      [
        'Logto never sees a used refresh token after its 3 s grace',
        results.instanceStorm
          .map((result) => `${result.tokenStore === 'redis-token-store' ? 'RedisTokenStore' : 'default store'}: ${result.lateReuses} late reuse(s), longest reuse ${number(result.latestReuse)} ms after first use, ${result.revokedGrants} grant(s) revoked, grant ${result.aliveAfter ? 'alive' : `**dead** (${result.aliveStatus})`} after`)
          .join('; '),
        met(graceOk),
      ],
      [
        'Secondary: one token request per sign-in; discovery and JWKS once per process',
        `${requestsPer(tokenPerSignIn)} token request(s) and ${requestsPer(otherPerSignIn)} other(s) per sign-in over ${ours?.laterSignIns ?? 0} sign-ins; the first sign-in: ${describeKinds(ours?.first)}`,
        met(tokenPerSignIn === 1 && otherPerSignIn === 0 && firstOk),
      ],
      [
        'Secondary: one refresh per storm of 50 in one process (MemoryStore)',
        `${refreshesPerStorm.join(', ') || 'none'} (${storm?.runs.length ?? 0} storms)${storm?.error ? `; error: ${storm.error}` : ''}`,
        met(stormOk),
      ],
    ],
  );
}

function describeKinds(kinds: Record<string, number> | undefined): string {
  if (!kinds) return 'n/a';
  const parts = Object.entries(kinds)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${requestsPer(count)} ${kind}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

/** The largest max/min − 1 of one app's req/s over its runs. */
function spread(section: ThroughputSection): number {
  return Math.max(...section.results.map((result) => {
    const values = result.runs.map((run) => run.rps);
    return Math.max(...values) / Math.min(...values) - 1;
  }));
}

function throughputSection(results: RunResults): string {
  const { settings } = results;
  const loads = loadSummaries(results.throughput);
  const rows = [...loads.values()].map((summary) => {
    const reference = baselineOf[summary.key];
    const own = summary.key === reference;
    return [
      loadLabels[summary.key],
      number(summary.rps),
      number(summary.p50, 2),
      number(summary.p99, 2),
      number(summary.cpu),
      own ? '(baseline)' : range(paired(results.throughput, summary.key, reference, (run) => run.rps)),
      own ? '' : range(paired(results.throughput, summary.key, reference, (run) => run.p99)),
      own ? '' : range(paired(results.throughput, summary.key, reference, (run) => run.cpuPerRequest)),
      summary.failures === 0 ? '0' : `**${summary.failures}**`,
    ];
  });
  const perRun = results.throughput.results.map((result) => [
    loadLabels[result.key].split(':')[0] ?? result.key,
    result.runs.map((run) => number(run.rps)).join(', '),
    result.runs.map((run) => number(run.p99, 1)).join(', '),
    result.runs.map((run) => number(run.cpuPerRequest)).join(', '),
  ]);
  const sideRows = results.throughput.sideBySide.map((result) => {
    const rps = (pick: (round: (typeof result.rounds)[number]) => MeasuredLoad): number => median(result.rounds.map((round) => pick(round).rps));
    const cpuRatio = sideBySide(results.throughput, result.key, (run) => run.cpuPerRequest);
    const rpsRatio = sideBySide(results.throughput, result.key, (run) => run.rps);
    return [
      loadLabels[result.key].split(':')[0] ?? result.key,
      `${number(rps((round) => round.ours))} against ${number(rps((round) => round.theirs))}`,
      rpsRatio ? range(rpsRatio) : 'n/a',
      cpuRatio ? range(cpuRatio) : 'n/a',
      pairMedians(result),
      String(result.rounds.reduce((sum, round) => sum + round.ours.failures + round.theirs.failures, 0)),
    ];
  });
  const processes = settings.sideBySideProcesses;
  const sideBySideText =
    sideRows.length === 0
      ? []
      : [
          '',
          '### Side by side',
          '',
          'Then each route and its baseline were loaded at the same moment, two autocannon instances of',
          `${settings.connections} connections each, the two app processes sharing one core (${results.throughput.placement}).`,
          'The scheduler gives each process half of that core, so each app answers as many requests as its CPU cost per request',
          'allows, and whatever the machine does during a round (other tenants, frequency) it does to both: the ratio of the',
          'two req/s is the ratio of their costs, without the drift between rounds taken seconds apart. Two processes of the',
          'very same app also differ, by a few percent (heap layout, compiled code), so',
          `${processes} fresh processes of each app took part (not those measured above), each signed in and warmed up alike, every process of passport-logto against every process of`,
          `bare Passport, ${settings.sideBySideRounds} rounds of ${settings.seconds} s per pair (${processes * processes * settings.sideBySideRounds} rounds per route), which autocannon starts first alternating.`,
          'This is the pairing the req/s verdicts use. Latencies are left out here: with two processes taking turns on one core',
          'they measure the scheduler\'s time slices.',
          '',
          table(['route', 'req/s (medians, its baseline second)', 'req/s against its baseline', 'app CPU per request against its baseline', 'median of each pair of processes (ours, baseline\'s)', 'non-2xx / errors'], sideRows),
        ];
  return [
    '## 1–2. Authenticated requests: a cached access token, and a route that reads only `req.user`',
    '',
    `autocannon, ${settings.connections} connections, one signed-in session per app, ${settings.runs} rounds of ${settings.seconds} s per route after a`,
    `${settings.warmupSeconds} s warm-up, the routes taking turns (each round starts with another one); medians of the runs. Each app runs`,
    'alone in its own Node.js process (passport-logto with MemoryStore and its default token home, the session store);',
    `autocannon and the provider share the parent process; ${results.throughput.placement}. Latencies are autocannon's per-response times.`,
    '"App CPU" is the user and system CPU time of the app\'s process over the run divided by the requests answered.',
    `The machine's speed drifts (2 cores shared with other jobs): the runs of one route differed by up to ${(spread(results.throughput) * 100).toFixed(0)}% in req/s here,`,
    'hence paired comparisons: in each round, a route\'s req/s (p99, CPU) over its baseline\'s, measured seconds apart; the',
    'median of those ratios, and their quartiles over the rounds. A verdict whose line lies between those quartiles says so:',
    'this machine cannot tell that difference apart from its own drift. The baseline of each route is bare Passport doing the',
    'same work: the same middleware stack, `passport.session()`, and the same `req.user` (passport-logto\'s default user, serialized whole).',
    '',
    table(
      ['app and route', 'req/s', 'p50 ms', 'p99 ms', 'app CPU µs per request', 'req/s against its baseline (paired)', 'p99 against its baseline', 'app CPU against its baseline', 'non-2xx / errors'],
      rows,
    ),
    '',
    `Requests that reached the provider during the load (every token was cached): ${results.throughput.providerRequestsDuringLoad}.`,
    '',
    'Each run, in the order measured:',
    '',
    table(['route', 'req/s', 'p99 ms', 'app CPU µs per request'], perRun),
    ...sideBySideText,
  ].join('\n');
}

function signInSection(results: RunResults): string {
  const { settings } = results;
  const rows = results.signIn.map((result) => {
    const latencies = result.callbackLatencies;
    return [
      names[result.variant],
      describeKinds(result.first),
      `${describeKinds(result.perLater)} (${result.laterSignIns} sign-ins)`,
      number(median(result.callbacksSequential), 1),
      number(median(result.callbacksConcurrent), 1),
      `${number(percentile(latencies, 50), 2)} / ${number(percentile(latencies, 99), 2)}`,
      number(median(result.flowsSequential), 1),
      number(median(result.flowsConcurrent), 1),
    ];
  });
  return [
    '## 3. Sign-in',
    '',
    `Requests to Logto are those the app itself sends (the browser's visits to \`/oidc/auth\` are left out), counted by the provider.`,
    `**Callbacks/s**: ${settings.callbacksPerRun} authorization codes are obtained first (each in its own browser), then the app's`,
    `callback requests alone are timed, one at a time and ${settings.signInConcurrency} at once; the callback includes the code exchange`,
    `with the provider. **Full sign-ins/s**: ${settings.flowsPerRun} complete sign-ins (app redirect, the provider's login form, the`,
    `callback), one at a time and ${settings.signInConcurrency} at once, mostly the provider's work. After ${settings.signInWarmup} warm-up sign-ins per`,
    `app, ${settings.signInRuns} runs, the apps taking turns; medians of the runs. The callback latency percentiles are over every`,
    'sequential callback of all runs.',
    '',
    table(
      [
        'library',
        'first sign-in in a process: requests to Logto',
        'per later sign-in',
        'callbacks/s, 1 at a time',
        `callbacks/s, ${settings.signInConcurrency} at once`,
        'callback p50 / p99 ms',
        'full sign-ins/s, 1 at a time',
        `full sign-ins/s, ${settings.signInConcurrency} at once`,
      ],
      rows,
    ),
  ].join('\n');
}

function stormSection(results: RunResults): string {
  const { settings } = results;
  const rows = results.storm.map((result) => {
    if (result.runs.length === 0) return [names[result.variant], `failed: ${result.error ?? 'no run'}`, '', '', '', ''];
    const statuses = result.runs.map((run) => Object.entries(run.statuses).map(([status, count]) => `${count}× ${status}`).join(' + ')).join('; ');
    return [
      names[result.variant],
      `${number(median(result.runs.map((run) => run.refreshes)))} (${result.runs.map((run) => run.refreshes).join(', ')})`,
      `${number(median(result.runs.map((run) => run.jwks)))} (${result.runs.map((run) => run.jwks).join(', ')})`,
      statuses,
      `${number(median(result.runs.map((run) => run.elapsed)), 1)} (${result.runs.map((run) => number(run.elapsed, 0)).join(', ')})`,
      result.error ? `error: ${result.error}` : result.aliveAfter ? 'yes' : `**no** (${result.aliveStatus})`,
    ];
  });
  const instanceRows = results.instanceStorm.map((result) => {
    if (result.runs.length === 0) return [tokenStoreLabels[result.tokenStore], `failed: ${result.error ?? 'no run'}`, '', '', '', '', ''];
    const statuses = result.runs.map((run) => Object.entries(run.statuses).map(([status, count]) => `${count}× ${status}`).join(' + ')).join('; ');
    return [
      tokenStoreLabels[result.tokenStore],
      result.runs.map((run) => `${run.refreshes} (${run.perInstance.join(' + ')})`).join(', '),
      statuses,
      `${number(median(result.runs.map((run) => run.elapsed)), 1)} (${result.runs.map((run) => number(run.elapsed, 0)).join(', ')})`,
      `${result.lateReuses} (longest: ${number(result.latestReuse)} ms after first use)`,
      String(result.revokedGrants),
      result.error ? `error: ${result.error}` : result.aliveAfter ? 'yes' : `**no** (${result.aliveStatus})`,
    ];
  });
  return [
    '## 4. Refresh storms',
    '',
    `### In one process`,
    '',
    `${settings.stormSize} concurrent requests of one session whose access token for the API resource has expired (a provider whose`,
    `access tokens live ${settings.stormTokenTtl} s; passport-logto with \`accessTokenExpiryMargin: 0\` and MemoryStore), sent over ${settings.stormSize} keep-alive connections opened`,
    `just before, so that all of them reach the app before the first refresh returns. ${settings.stormRuns} storms per library, each after the`,
    `previous storm's tokens expired. Medians, then every run in brackets. "Grant alive" is one more request after the last`,
    'storm\'s token expired: it needs the refresh token that the storm left behind.',
    '',
    table(['library', 'refresh requests reaching Logto', 'JWKS downloads', 'answers', 'ms until all are served', 'grant alive after'], rows),
    '',
    `### Over ${settings.stormInstances} instances sharing a real Redis`,
    '',
    `${settings.stormInstances} passport-logto processes of one Logto application (one callback URL, express-session on connect-redis, one`,
    `redis-server), one browser session. The same storm, its ${settings.stormSize} requests sent round-robin to the ${settings.stormInstances} instances; ${settings.stormRuns} storms, each after the`,
    'previous storm\'s token expired, then one request on the third instance after the last storm\'s token expired.',
    'Refreshes reaching Logto are counted by the provider; by instance, by each app process (a wrapper around its `fetch`).',
    '"Late reuses" are refresh requests whose refresh token Logto had first seen 3 s or more before (the provider\'s',
    '`requests[i].at`), over every refresh of the section; "grants revoked" is `provider.revokedGrants()` over the section.',
    '',
    table(['token home', 'refreshes per storm (by instance)', 'answers', 'ms until all are served', 'late reuses of a refresh token', 'grants revoked', 'grant alive after'], instanceRows),
  ].join('\n');
}

function profileSection(results: RunResults): string {
  if (results.profiles.length === 0) return '';
  const micros = (value: number | undefined): string => (value === undefined ? '0' : value.toFixed(1));
  const owners = ['express-session', 'passport', 'passport-logto (lib/)', 'router', 'express', 'Node.js', '(V8 and native)', '(GC)'];
  const rows = results.profiles.map((result) => {
    const self = result.analysis.selfByOwner;
    const listed = owners.reduce((sum, owner) => sum + (self[owner] ?? 0), 0);
    return [
      loadLabels[result.key].split(':')[0] ?? result.key,
      number(result.rps),
      micros(result.analysis.busy),
      ...owners.map((owner) => micros(self[owner])),
      micros(result.analysis.busy - listed),
      result.analysis.underLib > 0 ? micros(result.analysis.underLib) : '',
    ];
  });
  const ours = results.profiles.find((result) => result.key === 'passport-logto');
  const top = ours
    ? Object.entries(ours.analysis.inclusiveByLibFunction)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([name, value]) => `\`${name}\` ${value.toFixed(1)}`)
        .join(', ')
    : '';
  return [
    '## 6. Where the app\'s CPU goes',
    '',
    `V8's sampling profiler (every 100 µs) inside each app process, during ${results.settings.profileSeconds} s of the same load, after the load runs.`,
    'Microseconds of main-thread CPU per request, by the package of the innermost frame (self time), idle excluded. The',
    'profiler slows the app and the absolute numbers swell with the machine\'s load; compare the rows with one another.',
    '"Under lib/" is the time with any passport-logto function on the stack, whatever it called.',
    '',
    table(['route', 'req/s (profiled)', 'CPU µs per request', ...owners, 'the rest', 'under lib/'], rows),
    '',
    top ? `passport-logto functions on the cached-token route, µs per request with their callees (nested calls count in each): ${top}.` : '',
  ].join('\n');
}

function memorySection(results: RunResults): string {
  const { settings } = results;
  const bareBytes = sessionBytes(results, 'bare');
  const rows = results.memory.map((result) => {
    if (!result.sessionJson || !result.before || !result.after) {
      return [names[result.variant], `0 (an encrypted cookie of ${number(result.cookieBytes)} bytes on every request)`, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'];
    }
    const bytes = Buffer.byteLength(result.sessionJson);
    const others = Object.values(result.otherEntries).reduce((sum, json) => sum + Buffer.byteLength(json), 0);
    const added = settings.sessions - 1;
    return [
      names[result.variant],
      number(bytes),
      result.variant === 'bare' ? '(baseline)' : `${bytes - bareBytes >= 0 ? '+' : '−'}${number(Math.abs(bytes - bareBytes))}`,
      result.sessionWork === undefined ? 'n/a' : result.sessionWork.toFixed(2),
      others === 0 ? '0' : `${number(others)} (${Object.keys(result.otherEntries).length} entries)`,
      `${mib(result.after.heapUsed)} (${mib(result.before.heapUsed)} with 1)`,
      `${mib(result.after.rss)} (${mib(result.before.rss)} with 1)`,
      number((result.after.heapUsed - result.before.heapUsed) / added),
    ];
  });
  const ours = results.memory.find((result) => result.variant === 'passport-logto');
  return [
    '## 5. The session loaded per request, and memory per sign-in',
    '',
    'One real sign-in and one request for the API resource\'s token per library, in a fresh app process with MemoryStore.',
    '"Session" is the JSON that MemoryStore keeps for the session id in the cookie, which express-session parses on every',
    'request (and, with connect-redis, reads from Redis). passport-logto\'s default token home is that same store: its',
    'record and marks sit beside the session under keys of their own, read only when the per-process copy is older than 2 s',
    'or a refresh is due. Bare Passport logs in the very `req.user` that passport-logto\'s session holds. For memory, the',
    `store's entries of that sign-in are then copied under new ids until there are ${number(settings.sessions)} sign-ins (\`store.set\`, so each copy`,
    'is its own JSON string, as real entries are); heapUsed and rss are read in the app\'s own process after forced garbage',
    'collection (`--expose-gc`). "JSON work" is what express-session 1.19 and MemoryStore do with the session on every request',
    '(MemoryStore.get parses it; express-session hashes it with SHA-1 when loaded and again at the end; MemoryStore.touch',
    'parses and re-serializes it), replayed in a loop in the parent process, the sessions taking turns; medians of 7 rounds.',
    '',
    table(
      ['library', 'session bytes loaded per request', 'against bare Passport', 'express-session\'s JSON work on it, µs per request', 'other store entries of the sign-in, bytes', `heapUsed, ${number(settings.sessions)} sign-ins`, 'rss', 'heap bytes per sign-in'],
      rows,
    ),
    ...(ours?.sessionJson ? ['', sessionBreakdown(ours)] : []),
  ].join('\n');
}

/** Where passport-logto's session bytes go, and what sits beside it in the store. */
function sessionBreakdown(result: MemoryResult): string {
  const json = result.sessionJson ?? '{}';
  const data = JSON.parse(json) as Record<string, unknown>;
  const size = (value: unknown): number => (value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value)));
  const fields = Object.keys(data).map((key) => `\`${key}\` ${number(size(data[key]) + Buffer.byteLength(JSON.stringify(key)) + 2)}`);
  const entries = Object.entries(result.otherEntries).map(([key, value]) => `\`${key.replace(/[0-9a-f-]{36}$/, '<signInId>').replace(/:[A-Za-z0-9_-]{32}$/, ':<digest>')}\` ${number(Buffer.byteLength(value))}`);
  return [
    `passport-logto's session, by field (bytes of JSON, key included): ${fields.join(', ')}. The session holds \`logto: ${JSON.stringify(data.logto)}\`, a reference to the sign-in's record.`,
    entries.length === 0 ? '' : `Beside it in the store: ${entries.join(', ')}.`,
  ].filter(Boolean).join(' ');
}

function instructionSection(results: RunResults): string {
  const heading = '## 7. Instructions per request';
  const result = results.instructions;
  if (!result.available) return [heading, '', `Not measured in this run: ${result.reason}.`].join('\n');
  const { settings } = result;
  const thousands = (value: number): string => `${number(value / 1000)}k`;
  const rows = (['/api/token', '/api/me'] as const).flatMap((path) => {
    const theirs = meanOf(result.runs, 'bare', path);
    return (['bare', 'passport-logto'] as const).flatMap((variant) => {
      const mine = meanOf(result.runs, variant, path);
      if (!mine || !theirs) return [];
      const baseline = variant === 'bare';
      return [
        [
          `${names[variant]}, \`${path}\``,
          mine.runs.map((entry) => number(entry.requests)).join(', '),
          thousands(mine.instructions),
          thousands(mine.kinds.gc),
          thousands(mine.kinds.compiler),
          thousands(mine.kinds.rest),
          baseline ? '(baseline)' : ratio(mine.instructions / theirs.instructions),
          baseline ? '' : ratio(theirs.instructions / mine.instructions),
          baseline ? '' : ratio(mine.kinds.rest / theirs.kinds.rest),
          String(mine.runs.reduce((sum, entry) => sum + entry.failures, 0)),
        ],
      ];
    });
  });
  return [
    heading,
    '',
    'The same two routes and their baselines, each app in its own process under valgrind\'s callgrind, which counts the',
    'instructions the process executes on all its threads. The count does not drift with the machine\'s load or with the',
    'process\'s luck: two processes of one app gave the same count for "the rest" to within 0.5% in trials, where their',
    `req/s differ by up to 10%. Counting starts after ${number(settings.warmupRequests)} warm-up requests, at the end of one of V8's full`,
    `garbage collections under a steady load of ${settings.connections} connections, and stops when ${settings.cycles} more full collections have ended:`,
    'each app pays for the same number of whole collection cycles, and a cycle costs as much as a few hundred requests.',
    'V8 sizes its heap from how fast its collections ran in wall-clock time, which valgrind\'s slowdown and the machine\'s',
    'load distort; both apps run with a fixed growth factor (`--heap-growing-percent=200`, ×3, within the ×2.6–×4.2 V8 chose',
    'natively on this machine) and without the timer-driven memory reducer (`--no-memory-reducer`), so that allocation alone',
    'schedules their collections.',
    `${settings.processes} process(es) per app and route; the two apps of a route were counted at the same time. On a saturated`,
    'core, req/s is the inverse of the CPU time per request, so the inverse of the instruction ratio is the req/s ratio',
    'these counts predict, leaving aside that an instruction is not always as slow as another (cache misses).',
    '',
    table(
      ['app and route', 'requests counted', 'instructions per request', 'of which GC', 'optimizing compilers', 'the rest', 'against its baseline', 'req/s it predicts', 'the rest against its baseline', 'non-2xx'],
      rows,
    ),
  ].join('\n');
}

/** What the numbers say, with the mechanisms behind them (from each library's source). */
function notes(results: RunResults): string {
  const loads = loadSummaries(results.throughput);
  const signIn = (variant: VariantName): SignInResult | undefined => results.signIn.find((result) => result.variant === variant);
  const storm = (variant: VariantName): StormResult | undefined => results.storm.find((result) => result.variant === variant);
  const stormMedian = (variant: VariantName, pick: (run: StormResult['runs'][number]) => number): string =>
    number(median(storm(variant)?.runs.map(pick) ?? []), 0);
  const cpu = (key: LoadKey): number => loads.get(key)?.cpu ?? Number.NaN;
  const micros = (value: number): string => `${value >= 0 ? '+' : '−'}${number(Math.abs(value))} µs`;
  const memory = (variant: VariantName): MemoryResult | undefined => results.memory.find((result) => result.variant === variant);
  const eocCookie = memory('express-openid-connect')?.cookieBytes ?? 0;
  const versus = (key: LoadKey, reference: LoadKey): string => ratio(paired(results.throughput, key, reference, (run) => run.rps).median);
  const profile = (key: LoadKey) => results.profiles.find((result) => result.key === key)?.analysis;
  const tokenProfile = profile('passport-logto');
  const meProfile = profile('passport-logto-me');
  const workOf = (variant: VariantName): string => memory(variant)?.sessionWork?.toFixed(2) ?? 'n/a';
  const share = (part: number, whole: number): string => `${((part / whole) * 100).toFixed(1)}%`;
  const callbackP50 = (variant: VariantName): number => percentile(signIn(variant)?.callbackLatencies ?? [], 50);
  return [
    '## Reading the numbers',
    '',
    `- App CPU per request, against the same route of bare Passport: ${micros(cpu('passport-logto') - cpu('bare'))} on the cached-token route,`,
    `  ${micros(cpu('passport-logto-me') - cpu('bare-me'))} on the \`req.user\` route (medians of the load runs; their spread is larger than that here).`,
    ...(tokenProfile
      ? [
          `- Under the profiler, passport-logto's own code (lib/ on the stack) takes ${tokenProfile.underLib.toFixed(1)} µs of the cached-token route's`,
          `  ${tokenProfile.busy.toFixed(1)} µs per request (${share(tokenProfile.underLib, tokenProfile.busy)}): \`logto.authenticated()\` building a \`LogtoClient\`, \`load()\` reading the`,
          '  record from the per-process copy (a store read at most every 2 s), then `getAccessToken()`; most of it is the promise',
          '  machinery of the async calls, not work on the tokens. Where the load runs show a larger gap than that share, the rest',
          '  is either the machine\'s drift or a cost that main-thread samples do not show (GC helper threads count in "app CPU").',
        ]
      : []),
    ...(meProfile
      ? [
          `- On the \`req.user\` route ${meProfile.underLib > 0 ? `${meProfile.underLib.toFixed(1)} µs per request run in lib/` : 'no passport-logto function runs at all'}: the only difference from bare Passport is the`,
          `  session's reference to the record (section 5), which express-session parses, hashes and MemoryStore re-serializes:`,
          `  ${workOf('passport-logto')} µs of that JSON work per request against ${workOf('bare')} µs, measured in a loop; set that difference against`,
          `  the route's ${number(cpu('bare-me'))} µs of app CPU per request.`,
        ]
      : []),
    ...results.throughput.sideBySide.map((result) => {
      const medians = pairRatios(result).map(([, ratios]) => median(ratios));
      return `- Side by side on ${loadLabels[result.key].split(':')[0] ?? result.key}, the pairs of processes gave medians from ${Math.min(...medians).toFixed(2)} to ${Math.max(...medians).toFixed(2)}: one process of an app can be faster than another process of the same app by that much, hence the verdict on the median over every pair.`;
    }),
    `- Sign-in callbacks: passport-logto's p50 is ${number(callbackP50('passport-logto'), 2)} ms against ${number(callbackP50('express-openid-connect'), 2)} ms for express-openid-connect. With the default`,
    '  token home on MemoryStore, claiming the callback\'s `state` (so that a second arrival never exchanges the code again) uses',
    '  `SignInRecords.setIfAbsent` in lib/store/sign-in-records.ts, which, for a store without an atomic `setIfAbsent`',
    '  (`SessionStoreTokenStore` has none), writes, sleeps `emulationSettle` = 25 ms and reads back. Measured apart from this',
    '  run: `claimMark` takes a median 25.7 ms on `SessionStoreTokenStore(new MemoryStore())` and 0.01 ms on `MemoryTokenStore`.',
    '  The refresh lock (`SignInRecords.exclusive`) pays the same 25 ms once per refresh. Latency only, not CPU; connect-redis',
    '  and `RedisTokenStore` use Redis\'s atomic `SET NX` instead.',
    `- Against the other libraries on the cached-token route (paired req/s): ${versus('passport-logto', 'logto-express')} @logto/express's,`,
    `  ${versus('passport-logto', 'express-openid-connect')} express-openid-connect's.`,
    `- @logto/express builds a new client for every request, so its JWKS cache lives for one request: it downloads the JWKS at`,
    `  every sign-in (${requestsPer(signIn('logto-express')?.perLater.jwks ?? Number.NaN)} per sign-in here) and at every refresh that returns an ID token (median`,
    `  ${stormMedian('logto-express', (run) => run.jwks)} per storm). Its per-call promise cache is per client too, so the requests of a storm do not share a`,
    `  refresh (median ${stormMedian('logto-express', (run) => run.refreshes)} refresh requests for ${results.settings.stormSize} requests).`,
    `- express-openid-connect verifies no ID token signature at sign-in (openid-client 6 uses the JWKS only with`,
    `  \`enableNonRepudiationChecks\`), so it never downloads the JWKS. Its session is an encrypted cookie of ${number(eocCookie)} bytes that`,
    '  the browser sends with every request and that it re-encrypts and sends back on every response (rolling sessions). Nothing',
    `  coordinates refreshes: each request of a storm refreshes (median ${stormMedian('express-openid-connect', (run) => run.refreshes)}), and each answer carries a cookie with a`,
    '  different refresh token, the last one written winning.',
    '- The alternatives\' storms end well here only because the provider, like Logto, accepts a used refresh token again for 3',
    '  seconds after its first use; a storm whose requests span more than that, or any replay after it, revokes the grant.',
  ].join('\n');
}

const setup = `## How the apps were set up

All apps use Express ${versionOf('express')} and run alone in a child process; those that keep state in express-session use the same
settings (MemoryStore, \`resave: false\`, \`saveUninitialized: false\`). Each is registered with the provider as its own
application with its own redirect URI, and signs in the seeded user over HTTP (bench/targets.ts).

- **passport-logto**: as in its README, \`resources: [API]\`, \`scopes: ['email', 'read:items']\`, no \`tokenStore\` (the
  tokens live in the session store, MemoryStore); the user is serialized whole. The multi-instance storm uses connect-redis
  for sessions, with or without \`tokenStore: new RedisTokenStore(client)\` (a node-redis client of its own).
- **Passport alone**: the same middleware stack and the same routes in the same order; \`/sign-in\` calls \`req.login(user)\` with passport-logto's user for the seeded
  user (copied from passport-logto's session), with no identity provider.
- **@logto/express**: as in Logto's Express quick start: express-session, \`handleAuthRoutes(config)\` (\`/logto/sign-in\`,
  \`/logto/sign-in-callback\`) and \`withLogto({ ...config, getAccessToken: true, resource: API })\` on the route, the
  closest equivalent of \`getAccessToken(resource)\`: it builds a client per request and reads the token map from the
  session. Its quick start also mounts cookie-parser, which it does not use (its storage is \`req.session\`); left out.
- **express-openid-connect**: \`auth()\` with \`response_type: 'code'\` (its default, the implicit \`id_token\` flow, gives
  no access token), \`idTokenSigningAlg: 'ES384'\` (the provider's), \`prompt: 'consent'\` (Logto issues refresh tokens only
  then), the API resource in \`authorizationParams\` and \`tokenEndpointParams\` (so its access token is the resource's),
  \`authRequired: false\` with \`requiresAuth()\` on the route, and its default session: an encrypted, rolling cookie. The
  route refreshes as its README shows: \`if (accessToken.isExpired()) accessToken = await accessToken.refresh()\`.

The provider is test/support/provider/ (oidc-provider, configured like Logto: ES384 keys, refresh-token rotation with a
3 s reuse leeway, resource indicators). The load generator only targets 127.0.0.1.`;

export function render(results: RunResults, findings?: string): string {
  return [
    '# Benchmarks: passport-logto against bare Passport (and @logto/express, express-openid-connect)',
    '',
    'One run of `npm run bench` (bench/run.ts) on one machine, everything on loopback against the same bundled',
    'Logto-compatible provider. Rerun it for numbers of your own machine; compare ratios rather than absolute numbers.',
    '',
    machine(results),
    '',
    '## Targets',
    '',
    verdicts(results),
    '',
    ...(findings ? [findings, ''] : []),
    throughputSection(results),
    '',
    signInSection(results),
    '',
    stormSection(results),
    '',
    memorySection(results),
    '',
    profileSection(results),
    '',
    instructionSection(results),
    '',
    notes(results),
    '',
    setup,
    '',
  ].join('\n');
}
