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
import type { AppProcess, Counters, VariantName } from './protocol.js';
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
  requests: number;
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
  const outFile = join(directory, `${variant}-${path.replaceAll('/', '_')}-${index}.out`);
  const target: Target = await startTarget(provider, variant, options, { outFile });
  try {
    const browser = await signIn(target, provider);
    // One request that loads the token, as the load will.
    await browser.get(`${target.url}/api/token`);
    const headers = { cookie: sessionCookie(browser, target), accept: 'application/json' };
    const counted = await countWindow(target.app, `${target.url}${path}`, headers, settings, outFile);
    return { variant, path, requests: counted.requests, instructions: counted.instructions, kinds: counted.kinds, failures: counted.failures };
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
    await app.send<Counters>({ type: 'await-major-gcs', count: start.majorGcs + settings.cycles });
    await callgrindControl('--dump', pid);
    const last = await app.send<Counters>({ type: 'counters' });
    await callgrindControl('--instr=off', pid);
    const dump = `${outFile}.1`;
    if (!existsSync(dump)) throw new Error(`callgrind wrote no dump at ${dump}`);
    const { total, kinds } = await kindsOf(dump);
    const requests = last.requests - first.requests;
    return { requests, instructions: total / requests, kinds: { gc: kinds.gc / requests, compiler: kinds.compiler / requests, rest: kinds.rest / requests }, failures, first, last };
  } finally {
    load.stop();
    await finished;
  }
}

/**
 * Bare Passport and passport-logto on the cached-token route and on the `req.user` route,
 * `processes` times each; the two apps of a route are counted at the same time.
 */
export async function measureInstructions(
  provider: TestProvider,
  options: Record<'bare' | 'passport-logto', TargetOptions>,
  settings: InstructionSettings,
  progress: (message: string) => void,
): Promise<InstructionResult> {
  const missing = await missingTool();
  if (missing) return { available: false, reason: missing };
  const directory = mkdtempSync(join(tmpdir(), 'passport-logto-callgrind-'));
  const runs: InstructionRun[] = [];
  try {
    for (let index = 0; index < settings.processes; index += 1) {
      for (const path of ['/api/token', '/api/me']) {
        progress(`  instructions ${path} (${index + 1}/${settings.processes})`);
        const pair = await Promise.all(
          (['bare', 'passport-logto'] as const).map((variant) => countRoute(provider, variant, path, options[variant], settings, directory, index)),
        );
        runs.push(...pair);
      }
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  return { available: true, settings, runs };
}

/** Mean instructions per request of one app and route over its processes. */
export function meanOf(runs: InstructionRun[], variant: VariantName, path: string): { instructions: number; kinds: InstructionKinds; runs: InstructionRun[] } | undefined {
  const mine = runs.filter((entry) => entry.variant === variant && entry.path === path);
  if (mine.length === 0) return undefined;
  const mean = (pick: (entry: InstructionRun) => number): number => mine.reduce((sum, entry) => sum + pick(entry), 0) / mine.length;
  return {
    instructions: mean((entry) => entry.instructions),
    kinds: { gc: mean((entry) => entry.kinds.gc), compiler: mean((entry) => entry.kinds.compiler), rest: mean((entry) => entry.kinds.rest) },
    runs: mine,
  };
}

const standalone = process.argv[1] !== undefined && /bench[/\\]instructions\.ts$/.test(process.argv[1]);
if (standalone) {
  const { API_RESOURCE, startProvider } = await import('../test/support/provider/index.js');
  const { measureMemory, passportUserOf } = await import('./sections.js');
  const provider = await startProvider();
  try {
    const options: TargetOptions = { resource: API_RESOURCE, scopes: ['email', 'read:items'] };
    // Bare Passport logs in passport-logto's very user, as in bench/run.ts.
    const user = passportUserOf(await measureMemory(provider, 'passport-logto', options, { sessions: 1 } as Parameters<typeof measureMemory>[3]));
    const result = await measureInstructions(
      provider,
      { bare: { ...options, ...(user ? { user } : {}) }, 'passport-logto': options },
      { warmupRequests: Number(process.env.WARMUP ?? 4000), cycles: Number(process.env.CYCLES ?? 2), processes: Number(process.env.PROCESSES ?? 1), connections: 10 },
      (message) => process.stderr.write(`${message}\n`),
    );
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await provider.close();
  }
}
