/** Renders one run's results as Markdown: what bench/RESULTS.md holds and what the script prints. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { median, percentile } from './load.js';
import type { VariantName } from './protocol.js';
import type { LoadKey, MeasuredLoad, MemoryResult, Settings, SignInResult, StormResult, ThroughputSection } from './sections.js';

export interface RunResults {
  settings: Settings;
  startedAt: Date;
  durationSeconds: number;
  signIn: SignInResult[];
  throughput: ThroughputSection;
  storm: StormResult[];
  memory: MemoryResult[];
}

const names: Record<VariantName, string> = {
  bare: 'Passport alone',
  'passport-logto': 'passport-logto',
  'logto-express': '@logto/express',
  'express-openid-connect': 'express-openid-connect',
};

const loadLabels: Record<LoadKey, string> = {
  bare: 'Passport alone: `passport.session()`, trivially serialized user (baseline)',
  'passport-logto-session': 'passport-logto\'s session read by `passport.session()` alone (no helper)',
  'passport-logto': 'passport-logto: `logto.authenticated()` + `req.logto.getAccessToken(resource)`',
  'logto-express': '@logto/express: `withLogto({ getAccessToken: true, resource })`',
  'express-openid-connect': 'express-openid-connect: `requiresAuth()` + `req.oidc.accessToken`',
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

const range = (value: Paired): string => `${ratio(value.median)} (quartiles of the rounds ${value.low.toFixed(2)}–${value.high.toFixed(2)})`;

/** A verdict, flagged when the line it is judged against lies between the quartiles of the rounds. */
function judged(ok: boolean, value: Paired, line: number): string {
  return value.low < line && line < value.high ? `${met(ok)}, within the spread of the rounds` : met(ok);
}

/** The numbers that the targets and the findings are judged on. */
export interface Verdicts {
  overhead: number;
  versusLogtoExpress: number;
  versusOidc: number;
  tokenPerSignIn: number;
  refreshesPerStorm: number[];
  lines: string[];
}

export function verdicts(results: RunResults): Verdicts {
  const loads = loadSummaries(results.throughput);
  const p50 = (key: LoadKey): number => loads.get(key)?.p50 ?? Number.NaN;
  const cpu = (key: LoadKey): number => loads.get(key)?.cpu ?? Number.NaN;
  const byRps = (reference: LoadKey): Paired => paired(results.throughput, 'passport-logto', reference, (run) => run.rps);
  const versusBare = byRps('bare');
  const overhead = 1 - versusBare.median;
  const versusLogtoExpressPaired = byRps('logto-express');
  const versusOidcPaired = byRps('express-openid-connect');
  const versusLogtoExpress = versusLogtoExpressPaired.median;
  const versusOidc = versusOidcPaired.median;
  const ours = results.signIn.find((result) => result.variant === 'passport-logto');
  const tokenPerSignIn = ours ? ours.perLater['token: code'] + ours.perLater['token: refresh'] : Number.NaN;
  const otherPerSignIn = ours ? ours.perLater.discovery + ours.perLater.jwks + ours.perLater.other : Number.NaN;
  const firstOk = ours ? ours.first.discovery === 1 && ours.first.jwks === 1 && ours.first['token: code'] === 1 : false;
  const storm = results.storm.find((result) => result.variant === 'passport-logto');
  const refreshesPerStorm = storm?.runs.map((run) => run.refreshes) ?? [];
  const stormOk = storm !== undefined && storm.error === undefined && refreshesPerStorm.length > 0 && refreshesPerStorm.every((count) => count === 1)
    && storm.runs.every((run) => run.ok === results.settings.stormSize);
  const lines = [
    table(
      ['target', 'this run', 'verdict'],
      [
        [
          'Helper overhead at most 10% against bare Passport sessions (req/s)',
          `${overhead >= 0 ? `${(overhead * 100).toFixed(1)}% fewer` : `${(-overhead * 100).toFixed(1)}% more`} req/s than bare Passport (${range(versusBare)}); the helper alone, against the same session without it: ${range(paired(results.throughput, 'passport-logto', 'passport-logto-session', (run) => run.rps))}; p50 ${number(p50('passport-logto'), 2)} ms against ${number(p50('bare'), 2)} ms; app CPU ${number(cpu('passport-logto'))} µs against ${number(cpu('bare'))} µs per request`,
          judged(overhead <= 0.1, versusBare, 0.9),
        ],
        [
          'Ahead of @logto/express on the cached-token route (req/s)',
          `${range(byRps('logto-express'))} its req/s; p50 ${number(p50('passport-logto'), 2)} ms against ${number(p50('logto-express'), 2)} ms; app CPU ${number(cpu('passport-logto'))} µs against ${number(cpu('logto-express'))} µs`,
          judged(versusLogtoExpress > 1, versusLogtoExpressPaired, 1),
        ],
        [
          'Ahead of express-openid-connect on the cached-token route (req/s)',
          `${range(byRps('express-openid-connect'))} its req/s; p50 ${number(p50('passport-logto'), 2)} ms against ${number(p50('express-openid-connect'), 2)} ms; app CPU ${number(cpu('passport-logto'))} µs against ${number(cpu('express-openid-connect'))} µs`,
          judged(versusOidc > 1, versusOidcPaired, 1),
        ],
        [
          'Exactly one token request per sign-in; discovery and JWKS once per process',
          `${requestsPer(tokenPerSignIn)} token request(s) and ${requestsPer(otherPerSignIn)} other(s) per sign-in over ${ours?.laterSignIns ?? 0} sign-ins; the first sign-in: ${describeKinds(ours?.first)}`,
          met(tokenPerSignIn === 1 && otherPerSignIn === 0 && firstOk),
        ],
        [
          'Exactly one refresh request per storm of 50',
          `${refreshesPerStorm.join(', ') || 'none'} (${storm?.runs.length ?? 0} storms)${storm?.error ? `; error: ${storm.error}` : ''}`,
          met(stormOk),
        ],
      ],
    ),
  ];
  return { overhead, versusLogtoExpress, versusOidc, tokenPerSignIn, refreshesPerStorm, lines };
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
  const rows = [...loads.values()].map((summary) => [
    loadLabels[summary.key],
    number(summary.rps),
    number(summary.p50, 2),
    number(summary.p99, 2),
    number(summary.cpu),
    `${(paired(results.throughput, summary.key, 'bare', (run) => run.rps).median * 100).toFixed(1)}%`,
    summary.key === 'passport-logto' ? '' : range(paired(results.throughput, 'passport-logto', summary.key, (run) => run.rps)),
    summary.failures === 0 ? '0' : `**${summary.failures}**`,
  ]);
  const perRun = results.throughput.results.map((result) => [
    loadLabels[result.key].split(':')[0] ?? result.key,
    result.runs.map((run) => number(run.rps)).join(', '),
    result.runs.map((run) => number(run.cpuPerRequest)).join(', '),
  ]);
  return [
    '## 1–2. An authenticated request that reads a cached access token',
    '',
    `autocannon, ${settings.connections} connections, one signed-in session per app, ${settings.runs} runs of ${settings.seconds} s per app after a`,
    `${settings.warmupSeconds} s warm-up, the apps taking turns (each round starts with another one); medians of the runs. Each app runs`,
    'alone in its own Node.js process; the route answers `{ tokenLength }`. Latencies are autocannon\'s per-response times.',
    '"App CPU" is the user and system CPU time of the app\'s process over the run divided by the requests answered.',
    `The machine's speed drifts: the runs of one app differed by up to ${(spread(results.throughput) * 100).toFixed(0)}% in req/s here, every app alike, hence`,
    'many short runs taking turns, and paired comparisons: in each round, one app\'s req/s over the other\'s, measured seconds',
    'apart; the median of those ratios, and their quartiles over the rounds. A verdict whose line lies between those quartiles',
    'says so: this machine cannot tell that difference apart from its own drift.',
    '',
    table(['app and route', 'req/s', 'p50 ms', 'p99 ms', 'app CPU µs per request', 'req/s against bare Passport', 'passport-logto\'s req/s against it', 'non-2xx / errors'], rows),
    '',
    `Requests that reached the provider during the load (every token was cached): ${results.throughput.providerRequestsDuringLoad}.`,
    '',
    'Each run, in the order measured:',
    '',
    table(['app', 'req/s', 'app CPU µs per request'], perRun),
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
  return [
    '## 4. Refresh storm',
    '',
    `${settings.stormSize} concurrent requests of one session whose access token for the API resource has expired (a provider whose`,
    `access tokens live ${settings.stormTokenTtl} s; passport-logto with \`accessTokenExpiryMargin: 0\`), sent over ${settings.stormSize} keep-alive connections opened`,
    `just before, so that all of them reach the app before the first refresh returns. ${settings.stormRuns} storms per library, each after the`,
    `previous storm's tokens expired. Medians, then every run in brackets. "Grant alive" is one more request after the last`,
    'storm\'s token expired: it needs the refresh token that the storm left in the session.',
    '',
    table(['library', 'refresh requests reaching Logto', 'JWKS downloads', 'answers', 'ms until all are served', 'grant alive after'], rows),
  ].join('\n');
}

function memorySection(results: RunResults): string {
  const { settings } = results;
  const rows = results.memory.map((result) => {
    if (!result.sessionJson || !result.before || !result.after) {
      return [names[result.variant], `0 (an encrypted cookie of ${number(result.cookieBytes)} bytes on every request)`, 'n/a', 'n/a', 'n/a'];
    }
    const added = result.after.sessions - result.before.sessions;
    return [
      names[result.variant],
      number(Buffer.byteLength(result.sessionJson)),
      `${mib(result.after.heapUsed)} (${mib(result.before.heapUsed)} with 1)`,
      `${mib(result.after.rss)} (${mib(result.before.rss)} with 1)`,
      number((result.after.heapUsed - result.before.heapUsed) / added),
    ];
  });
  const ours = results.memory.find((result) => result.variant === 'passport-logto');
  return [
    '## 5. Memory',
    '',
    `One real sign-in and one request for the API resource's token per library; that session is then copied under new ids`,
    `into express-session's MemoryStore until it holds ${number(settings.sessions)} sessions (\`store.set\`, so each copy is its own`,
    'JSON string, as real sessions are). Bytes are the JSON that MemoryStore keeps per session; heapUsed and rss are read in the',
    'app\'s own process after forced garbage collection (`--expose-gc`).',
    '',
    table(['library', 'bytes per session in the store', `heapUsed, ${number(settings.sessions)} sessions`, 'rss', 'heap bytes per session'], rows),
    ...(ours?.sessionJson ? ['', sessionBreakdown(ours.sessionJson)] : []),
  ].join('\n');
}

/** Where passport-logto's session bytes go. */
function sessionBreakdown(json: string): string {
  const data = JSON.parse(json) as Record<string, unknown> & { logto?: { tokens?: Record<string, unknown> }; passport?: unknown };
  const size = (value: unknown): number => (value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value)));
  const tokens = data.logto?.tokens ?? {};
  const parts = [
    ['ID token', size(tokens.idToken)],
    ['API resource token', size(tokens.resourceTokens)],
    ['userinfo token', size(tokens.accessToken)],
    ['refresh token', size(tokens.refreshToken)],
    ['`req.user` (Passport)', size(data.passport)],
    ['cookie and the rest', Buffer.byteLength(json) - size(tokens.idToken) - size(tokens.resourceTokens) - size(tokens.accessToken) - size(tokens.refreshToken) - size(data.passport)],
  ] as const;
  return `passport-logto's session, by part (bytes of JSON): ${parts.map(([name, bytes]) => `${name} ${number(bytes)}`).join(', ')}.`;
}

/** What the numbers say, with the mechanisms behind them (from each library's source). */
function notes(results: RunResults): string {
  const loads = loadSummaries(results.throughput);
  const signIn = (variant: VariantName): SignInResult | undefined => results.signIn.find((result) => result.variant === variant);
  const storm = (variant: VariantName): StormResult | undefined => results.storm.find((result) => result.variant === variant);
  const stormMedian = (variant: VariantName, pick: (run: StormResult['runs'][number]) => number): string =>
    number(median(storm(variant)?.runs.map(pick) ?? []), 0);
  const cpu = (key: LoadKey): number => loads.get(key)?.cpu ?? Number.NaN;
  const sessionShare = 1 - paired(results.throughput, 'passport-logto-session', 'bare', (run) => run.rps).median;
  const helperShare = 1 - paired(results.throughput, 'passport-logto', 'passport-logto-session', (run) => run.rps).median;
  const micros = (value: number): string => `${value >= 0 ? '+' : '−'}${number(Math.abs(value))} µs`;
  const memory = (variant: VariantName): MemoryResult | undefined => results.memory.find((result) => result.variant === variant);
  const eocCookie = memory('express-openid-connect')?.cookieBytes ?? 0;
  return [
    '## Reading the numbers',
    '',
    `- Cached-token route: against bare Passport, a session that holds passport-logto's tokens costs ${(sessionShare * 100).toFixed(1)}% of`,
    `  the req/s and ${micros(cpu('passport-logto-session') - cpu('bare'))} of app CPU per request: on every request express-session serializes and`,
    '  hashes the whole session twice (to see whether it changed), and its MemoryStore parses it, then parses and re-serializes',
    `  it again to touch it, all in proportion to its size. The helper on top costs ${(helperShare * 100).toFixed(1)}% of the req/s and`,
    `  ${micros(cpu('passport-logto') - cpu('passport-logto-session'))}${helperShare < 0 ? ' (a negative share is run-to-run noise)' : ''}. @logto/express keeps the same tokens in the same`,
    '  express-session, without Passport.',
    `- @logto/express builds a new client for every request, so its JWKS cache lives for one request: it downloads the JWKS at`,
    `  every sign-in (${requestsPer(signIn('logto-express')?.perLater.jwks ?? Number.NaN)} per sign-in here) and at every refresh that returns an ID token (median`,
    `  ${stormMedian('logto-express', (run) => run.jwks)} per storm). Its per-call promise cache is per client too, so the requests of a storm do not share a`,
    `  refresh (median ${stormMedian('logto-express', (run) => run.refreshes)} refresh requests for ${results.settings.stormSize} requests).`,
    `- express-openid-connect verifies no ID token signature at sign-in (openid-client 6 uses the JWKS only with`,
    `  \`enableNonRepudiationChecks\`), so it never downloads the JWKS. Its session is an encrypted cookie of ${number(eocCookie)} bytes that`,
    '  the browser sends with every request and that it re-encrypts and sends back on every response (rolling sessions); that',
    `  is most of its cost per request. Nothing coordinates refreshes: each request of a storm refreshes (median`,
    `  ${stormMedian('express-openid-connect', (run) => run.refreshes)}), and each answer carries a cookie with a different refresh token, the last one written winning.`,
    '- The alternatives\' storms end well here only because the provider, like Logto, accepts a used refresh token again for 3',
    '  seconds after its first use; a storm whose requests span more than that, or any replay after it, revokes the grant.',
  ].join('\n');
}

const setup = `## How the alternatives were set up

All apps use Express ${versionOf('express')} and run alone in a child process; those that keep state in express-session use the same
settings (MemoryStore, \`resave: false\`, \`saveUninitialized: false\`). Each is registered with the provider as its own
application with its own redirect URI, and signs in the seeded user over HTTP (bench/targets.ts).

- **passport-logto**: as in its README, \`resources: [API]\`, \`scopes: ['email', 'read:items']\`; the user is serialized whole.
- **Passport alone**: the same middleware stack; \`/login\` calls \`req.login({ id, name })\` with no identity provider.
- **@logto/express**: as in Logto's Express quick start: express-session, \`handleAuthRoutes(config)\` (\`/logto/sign-in\`,
  \`/logto/sign-in-callback\`) and \`withLogto({ ...config, getAccessToken: true, resource: API })\` on the route, the
  closest equivalent of \`getAccessToken(resource)\`: it builds a client per request and reads the token map from the
  session. Its quick start also mounts cookie-parser, which it does not use (its storage is \`req.session\`); left out.
- **express-openid-connect**: \`auth()\` with \`response_type: 'code'\` (its default, the implicit \`id_token\` flow, gives
  no access token), \`idTokenSigningAlg: 'ES384'\` (the provider's), \`prompt: 'consent'\` (Logto issues refresh tokens only
  then), the API resource in \`authorizationParams\` and \`tokenEndpointParams\` (so its access token is the resource's),
  \`authRequired: false\` with \`requiresAuth()\` on the route, and its default session: an encrypted, rolling cookie. The
  route refreshes as its README shows: \`if (accessToken.isExpired()) accessToken = await accessToken.refresh()\`.
  It works against the provider over plain http on loopback: it allows insecure requests to an http issuer and
  defaults to non-\`Secure\` cookies for an http base URL.

The provider is test/support/provider.ts (oidc-provider, configured like Logto: ES384 keys, refresh-token rotation with a
3 s reuse leeway, resource indicators). The load generator only targets 127.0.0.1.`;

export function render(results: RunResults): string {
  const verdict = verdicts(results);
  return [
    '# Benchmarks: passport-logto, @logto/express and express-openid-connect',
    '',
    'One run of `npm run bench` (bench/run.ts) on one machine, everything on loopback against the same bundled',
    'Logto-compatible provider. Rerun it for numbers of your own machine; compare ratios rather than absolute numbers.',
    '',
    machine(results),
    '',
    '## Targets',
    '',
    ...verdict.lines,
    '',
    throughputSection(results),
    '',
    signInSection(results),
    '',
    stormSection(results),
    '',
    memorySection(results),
    '',
    notes(results),
    '',
    setup,
    '',
  ].join('\n');
}
