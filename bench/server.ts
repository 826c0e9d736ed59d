/**
 * One app under test, in its own process, driven by bench/run.ts over IPC (see protocol.ts). It
 * listens first, because the app must know its own URL (callback, base URL) before it is built.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type session from 'express-session';
import type { Command, Listening, MemoryReport, Reply } from './protocol.js';
import { buildVariant, type BuiltVariant } from './variants.js';

let built: BuiltVariant | undefined;

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
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

function getSession(store: session.MemoryStore, id: string): Promise<session.SessionData> {
  return new Promise((resolve, reject) => {
    store.get(id, (error, data) => (error ? reject(error) : data ? resolve(data) : reject(new Error(`no session ${id}`))));
  });
}

function storeSize(store: session.MemoryStore): Promise<number> {
  return new Promise((resolve, reject) => store.length((error, length) => (error ? reject(error) : resolve(length ?? 0))));
}

async function handle(command: Command): Promise<unknown> {
  switch (command.type) {
    case 'configure':
      built = await buildVariant(command.config);
      return null;
    case 'memory': {
      collectGarbage();
      const { heapUsed, rss } = process.memoryUsage();
      const report: MemoryReport = { heapUsed, rss, sessions: built?.store ? await storeSize(built.store) : 0 };
      return report;
    }
    case 'session-json':
      // MemoryStore keeps each session as this very JSON string.
      return JSON.stringify(await getSession(storeOf(), command.sessionId));
    case 'cpu': {
      // Microseconds of CPU this process has used, user and system, GC threads included.
      const { user, system } = process.cpuUsage();
      return user + system;
    }
    case 'store-size':
      return storeSize(storeOf());
    case 'clone-session': {
      const store = storeOf();
      const data = await getSession(store, command.sessionId);
      let size = await storeSize(store);
      // store.set serializes afresh, so every copy is its own string, as real sessions are.
      while (size < command.total) {
        const id = randomBytes(24).toString('base64url');
        await new Promise<void>((resolve, reject) => store.set(id, data, (error) => (error ? reject(error) : resolve())));
        size += 1;
      }
      return size;
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
