/**
 * Instructions per request, counted by valgrind's callgrind inside each app process. On this
 * shared machine req/s drifts by more than the few percent the targets are about, and two
 * processes of one app differ by several percent; an instruction count does neither: the same
 * app and route give the same count to within a fraction of a percent, whatever else runs.
 *
 * Each app runs under callgrind with counting switched off. After a warm-up, a steady load
 * starts, and counting runs from the end of one of V8's full collections (mark-compact) to the
 * end of the `cycles`-th one after it, so that every app pays for the same number of whole
 * collection cycles. Its requests are counted by the app itself on arrival.
 *
 *   node --import tsx bench/instructions.ts      (this section alone, printed, not written)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import type { TestProvider } from '../test/support/provider/index.js';
import { assertLoopback } from './load.js';
import type { AppProcess, Counters, SessionMiddleware, VariantName } from './protocol.js';
import { sessionCookie, signIn, startTarget, type Target, type TargetOptions } from './targets.js';

const run = promisify(execFile);

export interface InstructionSettings {
  /** Requests before counting starts, so that V8 has compiled the hot code. */
  warmupRequests: number;
  /** Whole full-collection cycles in the counted window. */
  cycles: number;
  /** Processes per app and route; each adds a few minutes. */
  processes: number;
  connections: number;
  /** The session middlewares to count each route with; express-session alone when left out. */
  sessions?: SessionMiddleware[];
  /** The routes to count; both when left out. */
  paths?: string[];
  /** The apps to count; both when left out (one alone, to compare a change of lib/ with a baseline counted before). */
  variants?: Array<'bare' | 'passport-logto'>;
  /** How many times slower the apps' `Date.now()` runs (see the header); 1 when left out. */
  clockScale?: number;
}

/** Where the instructions went, by what ran them. */
export interface InstructionKinds {
  /** V8's garbage collector, on every thread. */
  gc: number;
  /** V8's optimizing compilers (recompiling hot code, also after deoptimizations). */
  compiler: number;
  /** Everything else: JavaScript, V8's runtime and built-ins, Node.js, libc, crypto. */
  rest: number;
}

export interface InstructionRun {
  variant: VariantName;
  path: string;
  session: SessionMiddleware;
  requests: number;
  /** Reads of the sign-in's token record from its store in the window (the copy was older than 2 s). */
  storeReads: number;
  /** Counted requests per second of wall-clock time, under callgrind. */
  requestsPerSecond: number;
  instructions: number;
  kinds: InstructionKinds;
  failures: number;
}

export type InstructionResult = { available: true; settings: InstructionSettings; runs: InstructionRun[] } | { available: false; reason: string };

const gcNames = ['Scaveng', 'Mark', 'Sweep', 'heap::', 'Heap::', 'MemoryChunk', 'Evacuat', 'RememberedSet', 'SlotSet', 'BodyDescriptor', 'Compactor', 'GCTracer', 'Concurrent', 'SizeFromMap', 'Worklist'];
const compilerNames = ['compiler::', 'maglev::', 'Zone::', 'RegisterAllocator', 'InstructionSelector', 'CodeGenerator', 'Assembler', 'BytecodeGraphBuilder', 'JSHeapBroker', 'CompilationJob', 'PipelineImpl'];

function kindOf(functionName: string): keyof InstructionKinds {
  if (gcNames.some((part) => functionName.includes(part))) return 'gc';
  if (compilerNames.some((part) => functionName.includes(part))) return 'compiler';
  return 'rest';
}

/** Self cost of every function in a callgrind dump (callgrind_annotate's list), summed by kind. */
async function kindsOf(dump: string): Promise<{ total: number; kinds: InstructionKinds }> {
  const { stdout } = await run('callgrind_annotate', ['--threshold=100', dump], { maxBuffer: 256 * 1024 * 1024 });
  const kinds: InstructionKinds = { gc: 0, compiler: 0, rest: 0 };
  let total = 0;
  for (const line of stdout.split('\n')) {
    const match = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!match) continue;
    const count = Number((match[1] as string).replaceAll(',', ''));
    if ((match[2] as string).includes('PROGRAM TOTALS')) {
      total = count;
      continue;
    }
    kinds[kindOf(match[2] as string)] += count;
  }
  return { total, kinds };
}

async function callgrindControl(option: string, pid: number): Promise<void> {
  await run('callgrind_control', [option, String(pid)]);
}

/** Whether valgrind, callgrind_control and callgrind_annotate are there to run. */
export async function missingTool(): Promise<string | undefined> {
  for (const tool of ['valgrind', 'callgrind_control', 'callgrind_annotate']) {
    try {
      await run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} not found (Debian's package valgrind)`;
    }
  }
  return undefined;
}

async function countRoute(provider: TestProvider, variant: VariantName, path: string, options: TargetOptions, settings: InstructionSettings, directory: string, index: number): Promise<InstructionRun> {
  const session = options.session ?? 'express-session';
  const outFile = join(directory, `${variant}-${session}-${path.replaceAll('/', '_')}-${index}.out`);
  const target: Target = await startTarget(provider, variant, { ...options, ...(settings.clockScale === undefined ? {} : { clockScale: settings.clockScale }) }, { outFile });
  try {
    const browser = await signIn(target, provider);
    // One request that loads the token, as the load will.
    await browser.get(`${target.url}/api/token`);
    const headers = { cookie: sessionCookie(browser, target), accept: 'application/json' };
    const counted = await countWindow(target.app, `${target.url}${path}`, headers, settings, outFile);
    return {
      variant,
      path,
      session,
      requests: counted.requests,
      storeReads: (counted.last.storeReads ?? 0) - (counted.first.storeReads ?? 0),
      requestsPerSecond: counted.requests / counted.seconds,
      instructions: counted.instructions,
      kinds: counted.kinds,
      failures: counted.failures,
    };
  } finally {
    await target.app.close();
  }
}

/** What one counted window of an app process gave, per request, and the app's counters at its ends. */
export interface CountedWindow {
  requests: number;
  instructions: number;
  kinds: InstructionKinds;
  failures: number;
  /** Wall-clock seconds the window lasted. */
  seconds: number;
  first: Counters;
  last: Counters;
}

/**
 * The counted window of an app already running under callgrind (started with `outFile`) and
 * signed in: a warm-up of `settings.warmupRequests` to `url`, then a steady load, counted from the
 * end of one full collection to the end of the `settings.cycles`-th one after it.
 */
export async function countWindow(app: AppProcess, url: string, headers: Record<string, string>, settings: InstructionSettings, outFile: string): Promise<CountedWindow> {
  const pid = app.pid;
  if (pid === undefined) throw new Error('no app process id');
  assertLoopback(url);
  await new Promise<void>((resolve, reject) => {
    autocannon({ url, amount: settings.warmupRequests, connections: settings.connections, headers }, (error) => (error ? reject(error) : resolve()));
  });
  // A steady load for as long as the window takes; stopped below.
  let failures = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const load = autocannon({ url, duration: 24 * 3600, connections: settings.connections, headers }, () => finish());
  load.on('response', (_client, statusCode) => {
    if (statusCode < 200 || statusCode >= 300) failures += 1;
  });
  try {
    const now = await app.send<Counters>({ type: 'counters' });
    const start = await app.send<Counters>({ type: 'await-major-gcs', count: now.majorGcs + 1 });
    await callgrindControl('--instr=on', pid);
    const first = await app.send<Counters>({ type: 'counters' });
    const startedAt = performance.now();
    await app.send<Counters>({ type: 'await-major-gcs', count: start.majorGcs + settings.cycles });
    await callgrindControl('--dump', pid);
    const last = await app.send<Counters>({ type: 'counters' });
    const seconds = (performance.now() - startedAt) / 1000;
    await callgrindControl('--instr=off', pid);
    const dump = `${outFile}.1`;
    if (!existsSync(dump)) throw new Error(`callgrind wrote no dump at ${dump}`);
    const { total, kinds } = await kindsOf(dump);
    const requests = last.requests - first.requests;
    return { requests, instructions: total / requests, kinds: { gc: kinds.gc / requests, compiler: kinds.compiler / requests, rest: kinds.rest / requests }, failures, seconds, first, last };
  } finally {
    load.stop();
    await finished;
  }
}

/**
 * Bare Passport and passport-logto on the cached-token route and on the `req.user` route, with
 * each session middleware asked for, `processes` times each; the two apps of a route are counted
 * at the same time.
 */
export async function measureInstructions(
  provider: TestProvider,
  options: Record<'bare' | 'passport-logto', TargetOptions>,
  settings: InstructionSettings,
  progress: (message: string) => void,
): Promise<InstructionResult> {
  const missing = await missingTool();
  if (missing) return { available: false, reason: missing };
  const kept = process.env.KEEP_DUMPS;
  const directory = kept ? kept : mkdtempSync(join(tmpdir(), 'passport-logto-callgrind-'));
  const runs: InstructionRun[] = [];
  try {
    for (let index = 0; index < settings.processes; index += 1) {
      for (const session of settings.sessions ?? ['express-session']) {
        for (const path of settings.paths ?? ['/api/token', '/api/me']) {
          progress(`  instructions ${path}, ${session} (${index + 1}/${settings.processes})`);
          const pair = await Promise.all(
            (settings.variants ?? (['bare', 'passport-logto'] as const)).map((variant) => countRoute(provider, variant, path, { ...options[variant], session }, settings, directory, index)),
          );
          runs.push(...pair);
        }
      }
    }
  } finally {
    if (!kept) rmSync(directory, { recursive: true, force: true });
  }
  return { available: true, settings, runs };
}

/** Mean instructions per request of one app and route (with one session middleware) over its processes. */
export function meanOf(
  runs: InstructionRun[],
  variant: VariantName,
  path: string,
  session: SessionMiddleware = 'express-session',
): { instructions: number; kinds: InstructionKinds; runs: InstructionRun[] } | undefined {
  const mine = runs.filter((entry) => entry.variant === variant && entry.path === path && entry.session === session);
  if (mine.length === 0) return undefined;
  const mean = (pick: (entry: InstructionRun) => number): number => mine.reduce((sum, entry) => sum + pick(entry), 0) / mine.length;
  return {
    instructions: mean((entry) => entry.instructions),
    kinds: { gc: mean((entry) => entry.kinds.gc), compiler: mean((entry) => entry.kinds.compiler), rest: mean((entry) => entry.kinds.rest) },
    runs: mine,
  };
}

/** The length of the access token passport-logto's token route answers with, from a process of its own. */
async function tokenLengthOf(provider: TestProvider, options: TargetOptions): Promise<number> {
  const target = await startTarget(provider, 'passport-logto', options);
  try {
    const browser = await signIn(target, provider);
    const response = await browser.get(`${target.url}/api/token`);
    if (response.status !== 200) throw new Error(`/api/token: ${response.status} ${response.text.slice(0, 300)}`);
    return (JSON.parse(response.text) as { tokenLength: number }).tokenLength;
  } finally {
    await target.app.close();
  }
}

/** One line per route and session middleware: passport-logto against bare Passport. */
export function summaryOf(result: InstructionResult): string {
  if (!result.available) return `instructions: not measured (${result.reason})`;
  const lines: string[] = [];
  for (const session of result.settings.sessions ?? ['express-session']) {
    for (const path of result.settings.paths ?? ['/api/token', '/api/me']) {
      const ours = meanOf(result.runs, 'passport-logto', path, session);
      const theirs = meanOf(result.runs, 'bare', path, session);
      if (!ours || !theirs) continue;
      const reads = ours.runs.reduce((sum, entry) => sum + entry.storeReads, 0);
      const requests = ours.runs.reduce((sum, entry) => sum + entry.requests, 0);
      const rate = ours.runs.reduce((sum, entry) => sum + entry.requestsPerSecond, 0) / ours.runs.length;
      lines.push(
        `${session} ${path}: ${Math.round(ours.instructions / 1000)}k against ${Math.round(theirs.instructions / 1000)}k, ×${(ours.instructions / theirs.instructions).toFixed(3)}`
          + ` (GC ${Math.round(ours.kinds.gc / 1000)}k/${Math.round(theirs.kinds.gc / 1000)}k, compilers ${Math.round(ours.kinds.compiler / 1000)}k/${Math.round(theirs.kinds.compiler / 1000)}k,`
          + ` rest ${Math.round(ours.kinds.rest / 1000)}k/${Math.round(theirs.kinds.rest / 1000)}k); ${reads} store read(s) over ${requests} requests, ${rate.toFixed(1)} req/s`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * Alone: `npm run build && node --import tsx bench/instructions.ts`, with
 *   SESSIONS=express-session,cookie-session  (the default: both)
 *   ROUTES=/api/token,/api/me                (the default: both)
 *   APPS=bare,passport-logto                 (the default: both)
 *   CLOCK_SCALE=50   how many times slower the apps' clock runs, about callgrind's slowdown here,
 *                    so that the 2 s copy answers for as many requests as natively (0: unscaled)
 *   WARMUP, CYCLES, PROCESSES
 *   KEEP_DUMPS=<existing directory>   keeps callgrind's dumps there, for callgrind_annotate
 * prints the runs as JSON, and a summary on stderr.
 */
const standalone = process.argv[1] !== undefined && /bench[/\\]instructions\.ts$/.test(process.argv[1]);
if (standalone) {
  const { API_RESOURCE, startProvider } = await import('../test/support/provider/index.js');
  const { measureMemory, passportUserOf } = await import('./sections.js');
  const list = (value: string | undefined, fallback: string[]): string[] => (value ? value.split(',').map((entry) => entry.trim()).filter(Boolean) : fallback);
  const sessions = list(process.env.SESSIONS, ['express-session', 'cookie-session']);
  for (const session of sessions) {
    if (session !== 'express-session' && session !== 'cookie-session') throw new Error(`SESSIONS: unknown session middleware ${session}`);
  }
  const clockScale = Number(process.env.CLOCK_SCALE ?? 50);
  const provider = await startProvider();
  try {
    const options: TargetOptions = { resource: API_RESOURCE, scopes: ['email', 'read:items'] };
    // Bare Passport logs in passport-logto's very user, as in bench/run.ts.
    const user = passportUserOf(await measureMemory(provider, 'passport-logto', options, { sessions: 1 } as Parameters<typeof measureMemory>[3]));
    // And answers the token route with passport-logto's body, byte for byte.
    const tokenLength = await tokenLengthOf(provider, options);
    const result = await measureInstructions(
      provider,
      { bare: { ...options, tokenLength, ...(user ? { user } : {}) }, 'passport-logto': options },
      {
        warmupRequests: Number(process.env.WARMUP ?? 4000),
        cycles: Number(process.env.CYCLES ?? 2),
        processes: Number(process.env.PROCESSES ?? 1),
        connections: 10,
        sessions: sessions as SessionMiddleware[],
        paths: list(process.env.ROUTES, ['/api/token', '/api/me']),
        ...(process.env.APPS ? { variants: list(process.env.APPS, []) as Array<'bare' | 'passport-logto'> } : {}),
        ...(clockScale > 0 ? { clockScale } : {}),
      },
      (message) => process.stderr.write(`${message}\n`),
    );
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    process.stderr.write(`${summaryOf(result)}\n`);
  } finally {
    await provider.close();
  }
}
