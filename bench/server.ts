/**
 * One app under test, in its own process, driven by bench/run.ts over IPC (see protocol.ts). It
 * listens first, because the app must know its own URL (callback, base URL) before it is built.
 */
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type session from 'express-session';
import { answerCommands, awaitMajorGcs, counters, listen, scaleClock, startProfile, stopProfile } from './app-side.js';
import type { Command, MemoryReport } from './protocol.js';
import { buildVariant, type BuiltVariant } from './variants.js';

let built: BuiltVariant | undefined;

const server = await listen(() => built?.app);

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

async function handle(command: Command): Promise<unknown> {
  switch (command.type) {
    case 'configure':
      if (command.config.clockScale !== undefined) scaleClock(command.config.clockScale);
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
      return { ...counters, storeReads: built?.storeReads() ?? 0 };
    case 'await-major-gcs':
      return { ...(await awaitMajorGcs(command.count)), storeReads: built?.storeReads() ?? 0 };
    case 'refreshes':
      return refreshesSent;
    case 'profile-start':
      return startProfile(command.intervalMicros);
    case 'profile-stop':
      return stopProfile();
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

answerCommands(server, handle);
