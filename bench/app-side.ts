/**
 * The child's side of an app process (bench/server.ts, bench/host-server.ts): listening before the
 * app exists, counting requests and V8's full collections, and answering the parent's commands.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Session as InspectorSession } from 'node:inspector';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import type { Command, Counters, Listening, Reply } from './protocol.js';

/**
 * Requests received, and V8's full collections seen (bench/instructions.ts aligns its window on
 * them). Counted on arrival, which costs nothing measurable; under steady load the requests in
 * flight at the start and at the end of a window are about as many.
 */
export const counters: Counters = { requests: 0, majorGcs: 0 };
const gcWaiters: { count: number; resolve: (counters: Counters) => void }[] = [];
/** The request count at the last full collection, and the most requests allowed without one (see collectAfter). */
let requestsAtLastMajor = 0;
let collectLimit = Infinity;
let collecting = false;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      counters.majorGcs += 1;
      requestsAtLastMajor = counters.requests;
      collecting = false;
    }
  }
  for (const waiter of gcWaiters.filter((candidate) => candidate.count <= counters.majorGcs)) {
    gcWaiters.splice(gcWaiters.indexOf(waiter), 1);
    waiter.resolve({ ...counters });
  }
}).observe({ entryTypes: ['gc'] });

/** The counters once `count` full collections have ended. */
export function awaitMajorGcs(count: number): Counters | Promise<Counters> {
  if (counters.majorGcs >= count) return { ...counters };
  return new Promise<Counters>((resolve) => gcWaiters.push({ count, resolve }));
}

/**
 * From now on, a full collection is forced (with --expose-gc's gc()) once `requests` requests have
 * arrived without one: an app that promotes almost nothing to V8's old space may go many
 * thousands of requests between full collections, and a window that waits for them would not end.
 */
export function collectAfter(requests: number): void {
  collectLimit = requests;
}

function collectIfDue(): void {
  if (collecting || counters.requests - requestsAtLastMajor < collectLimit) return;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('collectAfter needs --expose-gc');
  collecting = true;
  counters.forcedGcs = (counters.forcedGcs ?? 0) + 1;
  setImmediate(gc);
}

/**
 * Listens on 127.0.0.1 and tells the parent its URL; each request is counted, then goes to the
 * handler `current()` gives (503 while there is none yet).
 */
export async function listen(current: () => ((req: IncomingMessage, res: ServerResponse) => void) | undefined): Promise<Server> {
  const server = createServer((req, res) => {
    counters.requests += 1;
    collectIfDue();
    const handler = current();
    if (handler) {
      handler(req, res);
      return;
    }
    res.statusCode = 503;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const listening: Listening = { type: 'listening', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  process.send?.(listening);
  return server;
}

/** Answers the parent's commands with `handle`, and stops when the parent disconnects. */
export function answerCommands(server: Server, handle: (command: Command) => Promise<unknown>): void {
  process.on('message', (message: { id: number; command: Command }) => {
    handle(message.command).then(
      (result) => {
        const reply: Reply = { id: message.id, ok: true, result };
        process.send?.(reply);
      },
      (error: unknown) => {
        const reply: Reply = { id: message.id, ok: false, error: error instanceof Error ? error.stack ?? error.message : String(error) };
        process.send?.(reply);
      },
    );
  });
  // The parent disconnects to stop the app, and a parent that dies must not leave it running.
  process.on('disconnect', () => {
    server.closeAllConnections();
    server.close();
    process.exit(0);
  });
}

const realNow = Date.now;

/**
 * From now on, Date.now advances `scale` times slower than the real clock (1: the real clock).
 * Under callgrind an app answers dozens of times fewer requests per second than natively, so
 * passport-logto's copy of a record (fresh for 2 s) would serve that many times fewer requests, and
 * the store reads after each copy would weigh that much more per request. Both apps of a
 * comparison get the same scale.
 */
export function scaleClock(scale: number): void {
  if (!(scale > 0)) throw new Error(`the clock scale must be positive, got ${scale}`);
  const realStart = realNow();
  const shownStart = Date.now();
  Date.now = scale === 1 ? realNow : () => shownStart + Math.floor((realNow() - realStart) / scale);
}

let inspector: InspectorSession | undefined;

function post(session: InspectorSession, method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/** Starts the V8 sampling profiler of this very process (bench/profile.ts): where the app's CPU goes. */
export async function startProfile(intervalMicros: number): Promise<null> {
  inspector ??= new InspectorSession();
  inspector.connect();
  await post(inspector, 'Profiler.enable');
  await post(inspector, 'Profiler.setSamplingInterval', { interval: intervalMicros });
  await post(inspector, 'Profiler.start');
  return null;
}

export async function stopProfile(): Promise<unknown> {
  if (!inspector) throw new Error('no profile started');
  const { profile } = (await post(inspector, 'Profiler.stop')) as { profile: unknown };
  inspector.disconnect();
  return profile;
}
