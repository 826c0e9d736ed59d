/**
 * One app under test, in its own process, driven by bench/run.ts over IPC (see protocol.ts). It
 * listens first, because the app must know its own URL (callback, base URL) before it is built.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Session as InspectorSession } from 'node:inspector';
import type session from 'express-session';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import type { Command, Counters, Listening, MemoryReport, Reply } from './protocol.js';
import { buildVariant, type BuiltVariant } from './variants.js';

let built: BuiltVariant | undefined;

/**
 * Requests received, and V8's full collections seen (bench/instructions.ts aligns its window on
 * them). Counted on arrival, which costs nothing measurable; under steady load the requests in
 * flight at the start and at the end of a window are about as many.
 */
const counters: Omit<Counters, 'storeReads'> = { requests: 0, majorGcs: 0 };
const snapshot = (): Counters => ({ ...counters, storeReads: built?.storeReads() ?? 0 });
const gcWaiters: { count: number; resolve: (counters: Counters) => void }[] = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) counters.majorGcs += 1;
  }
  for (const waiter of gcWaiters.filter((candidate) => candidate.count <= counters.majorGcs)) {
    gcWaiters.splice(gcWaiters.indexOf(waiter), 1);
    waiter.resolve(snapshot());
  }
}).observe({ entryTypes: ['gc'] });

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  counters.requests += 1;
  if (built) {
    built.app(req, res);
    return;
  }
  res.statusCode = 503;
  res.end();
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const listening: Listening = { type: 'listening', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
process.send?.(listening);

/** A full collection, with or without --expose-gc on the command line. */
function collectGarbage(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  // Several passes: weak references and finalizers free more on the next one.
  for (let pass = 0; pass < 4; pass += 1) gc();
}

function storeOf(): session.MemoryStore {
  if (!built?.store) throw new Error('this variant keeps no server-side session store');
  return built.store;
}

/** Every entry of the MemoryStore as the JSON it keeps: sessions, and passport-logto's records beside them. */
function storeEntries(store: session.MemoryStore): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    store.all((error, all) => {
      if (error) return reject(error);
      const entries: Record<string, string> = {};
      for (const [id, data] of Object.entries(all ?? {})) entries[id] = JSON.stringify(data);
      resolve(entries);
    });
  });
}

function storeSize(store: session.MemoryStore): Promise<number> {
  return new Promise((resolve, reject) => store.length((error, length) => (error ? reject(error) : resolve(length ?? 0))));
}

/**
 * Refresh requests this process sent to the token endpoint. openid-client calls the global fetch
 * at request time, so wrapping it counts them per instance, which the provider cannot tell apart.
 */
let refreshesSent = 0;
const originalFetch = globalThis.fetch;
globalThis.fetch = (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
  const body = init?.body;
  if ((body instanceof URLSearchParams || typeof body === 'string') && String(body).includes('grant_type=refresh_token')) refreshesSent += 1;
  return originalFetch(input, init);
};

/**
 * Makes `Date.now()` run `scale` times slower than the wall clock, from now on. Under callgrind the
 * app answers dozens of times fewer requests per second than natively, so a copy of a token record
 * that answers for 2 s would answer for dozens of times fewer requests, and the store reads that
 * follow each 2 s would weigh that much more per request. Both apps of a comparison get it.
 */
function slowClock(scale: number): void {
  if (!(scale > 0)) throw new Error(`clockScale must be positive, got ${scale}`);
  const wall = Date.now.bind(Date);
  const origin = wall();
  Date.now = () => origin + Math.floor((wall() - origin) / scale);
}

let inspector: InspectorSession | undefined;

function post(session: InspectorSession, method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

async function handle(command: Command): Promise<unknown> {
  switch (command.type) {
    case 'configure':
      if (command.config.clockScale !== undefined) slowClock(command.config.clockScale);
      built = await buildVariant(command.config);
      return null;
    case 'memory': {
      collectGarbage();
      const { heapUsed, rss } = process.memoryUsage();
      const report: MemoryReport = { heapUsed, rss, sessions: built?.store ? await storeSize(built.store) : 0 };
      return report;
    }
    case 'store-entries':
      // MemoryStore keeps each entry as this very JSON string.
      return storeEntries(storeOf());
    case 'cpu': {
      // Microseconds of CPU this process has used, user and system, GC threads included.
      const { user, system } = process.cpuUsage();
      return user + system;
    }
    case 'store-size':
      return storeSize(storeOf());
    case 'counters':
      return snapshot();
    case 'await-major-gcs':
      if (counters.majorGcs >= command.count) return snapshot();
      return new Promise<Counters>((resolve) => gcWaiters.push({ count: command.count, resolve }));
    case 'refreshes':
      return refreshesSent;
    case 'profile-start': {
      // The V8 sampling profiler of this very process (bench/profile.ts): where the app's CPU goes.
      inspector ??= new InspectorSession();
      inspector.connect();
      await post(inspector, 'Profiler.enable');
      await post(inspector, 'Profiler.setSamplingInterval', { interval: command.intervalMicros });
      await post(inspector, 'Profiler.start');
      return null;
    }
    case 'profile-stop': {
      if (!inspector) throw new Error('no profile started');
      const { profile } = (await post(inspector, 'Profiler.stop')) as { profile: unknown };
      inspector.disconnect();
      return profile;
    }
    case 'clone-store': {
      // The store holds one sign-in (its session, and for passport-logto its token record and
      // marks): copy that whole group under new ids until there are `total` of them. store.set
      // serializes afresh, so every copy is its own string, as real entries are.
      const store = storeOf();
      const group = Object.values(await storeEntries(store)).map((json) => JSON.parse(json) as session.SessionData);
      for (let copies = 1; copies < command.total; copies += 1) {
        for (const data of group) {
          const id = randomBytes(24).toString('base64url');
          await new Promise<void>((resolve, reject) => store.set(id, data, (error) => (error ? reject(error) : resolve())));
        }
      }
      return command.total;
    }
  }
}

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
