/**
 * The parent side of the benchmark's app processes: each app under test runs alone in a child
 * process (bench/server.ts), so that the load generator, the provider and the app do not share an
 * event loop, and so that memory is measured in a process that holds nothing but that app.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type VariantName = 'bare' | 'passport-logto' | 'logto-express' | 'express-openid-connect';

/** What a child needs to build its app, once it knows its own URL. */
export interface VariantConfig {
  variant: VariantName;
  url: string;
  endpoint: string;
  issuer: string;
  appId: string;
  appSecret: string;
  resource: string;
  /** Scopes beyond openid/offline_access/profile. */
  scopes: string[];
  /** passport-logto's accessTokenExpiryMargin, in seconds. */
  accessTokenExpiryMargin?: number;
  /** express-openid-connect and @logto/express sign ID tokens' alg check against this. */
  idTokenAlg: string;
  /** Bare Passport: the user that /login logs in (the same as passport-logto's, for a like-for-like session). */
  user?: Record<string, unknown>;
  /** Bare Passport: the token length its /api/token reports, so that it answers passport-logto's body byte for byte. */
  tokenLength?: number;
  /** passport-logto behind a load balancer: a callback URL shared by every instance. */
  callbackURL?: string;
  /** passport-logto: sessions in connect-redis on this Redis instead of MemoryStore. */
  redisUrl?: string;
  /** passport-logto: `tokenStore: new RedisTokenStore(client)`; without it, the default (the session store). */
  redisTokenStore?: boolean;
  /**
   * Bare Passport and passport-logto without Redis: the session middleware, express-session with
   * MemoryStore (the default) or cookie-session (passport-logto then keeps tokens in a MemoryTokenStore).
   */
  session?: SessionMiddleware;
  /**
   * Under callgrind: how many times slower the app's `Date.now()` runs than the wall clock (see
   * bench/instructions.ts), so that a copy of a record answers for as many requests as natively.
   */
  clockScale?: number;
}

export type SessionMiddleware = 'express-session' | 'cookie-session';

export interface MemoryReport {
  heapUsed: number;
  rss: number;
  sessions: number;
}

export type Command =
  | { type: 'configure'; config: VariantConfig }
  | { type: 'memory' }
  | { type: 'clone-store'; total: number }
  | { type: 'store-entries' }
  | { type: 'refreshes' }
  | { type: 'profile-start'; intervalMicros: number }
  | { type: 'profile-stop' }
  | { type: 'store-size' }
  | { type: 'cpu' }
  | { type: 'counters' }
  /** Answers with the counters once `majorGcs` has reached this many. */
  | { type: 'await-major-gcs'; count: number }
  /** bench/host-server.ts: builds one app of another host than Express (bench/host-apps.ts). */
  | { type: 'configure-host'; config: HostConfig }
  /** bench/host-server.ts: the user the app's sign-in logged in, as Passport serialized it. */
  | { type: 'logged-in-user' }
  /** bench/host-server.ts: from now on, Date.now advances `scale` times slower than the real clock. */
  | { type: 'clock-scale'; scale: number }
  /** bench/host-server.ts: from now on, a full collection is forced after this many requests without one. */
  | { type: 'collect-after'; requests: number };

/** Another host than Express, as bench/hosts.ts measures it. */
export type HostName = 'nest-express' | 'nest-fastify' | 'fastify-secure-session' | 'fastify-session' | 'koa';

/** What bench/host-server.ts builds an app of another host from. */
export interface HostConfig {
  host: HostName;
  variant: 'bare' | 'passport-logto';
  url: string;
  endpoint: string;
  appId: string;
  appSecret: string;
  resource: string;
  scopes: string[];
  /** Bare Passport: the user /sign-in logs in (passport-logto's, for a like-for-like session). */
  user?: Record<string, unknown>;
  /** Bare Passport: the token length /api/token reports, so that both apps answer the same body. */
  tokenLength?: number;
}

/** Requests this app answered, V8's full (mark-compact) collections, and token-record store reads, since it started. */
export interface Counters {
  requests: number;
  majorGcs: number;
  /** Reads of passport-logto's records from its token store (0 for bare Passport). */
  storeReads?: number;
  /** bench/host-server.ts: full collections forced by `collect-after` (counted in majorGcs too). */
  forcedGcs?: number;
}

/** How to run an app under valgrind's callgrind, counting instructions (bench/instructions.ts). */
export interface CallgrindRun {
  /** callgrind's output file; a dump adds `.1`, `.2`… to it. */
  outFile: string;
}

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export interface Listening {
  type: 'listening';
  url: string;
}

const serverScript = fileURLToPath(new URL('./server.ts', import.meta.url));

/** One app process; commands are answered in order of their ids. */
export class AppProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on('message', (message: Reply) => {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.ok) waiter.resolve(message.result);
      else waiter.reject(new Error(message.error));
    });
    child.on('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`app process exited with ${code}`));
      this.pending.clear();
    });
  }

  /**
   * Starts a child that listens on 127.0.0.1 and waits for its configuration: bench/server.ts, or
   * `script` (bench/host-server.ts).
   */
  static async start(callgrind?: CallgrindRun, script: string = serverScript): Promise<AppProcess> {
    // --expose-gc so that memory is read after a full collection, as in the parent.
    const nodeArgs = ['--expose-gc', '--import', 'tsx'];
    // Under callgrind, counting starts switched off (--instr-atstart=no) and bench/instructions.ts
    // switches it on for the measured window only; callgrind's own messages are kept off the report.
    // V8 sizes the heap from how fast its collections ran in wall-clock time, which valgrind's
    // slowdown and the machine's load distort: a fixed growth factor (×3, within what V8 picked
    // natively here) and no timer-driven memory reducer leave allocation alone to schedule them.
    const child = callgrind
      ? fork(script, [], {
          execPath: 'valgrind',
          execArgv: [
            '--tool=callgrind',
            '--instr-atstart=no',
            `--callgrind-out-file=${callgrind.outFile}`,
            '--log-file=/dev/null',
            process.execPath,
            '--heap-growing-percent=200',
            '--no-memory-reducer',
            ...nodeArgs,
          ],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
      : fork(script, [], { execArgv: nodeArgs, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const url = await new Promise<string>((resolve, reject) => {
      child.once('message', (message: Listening) => resolve(message.url));
      child.once('exit', (code) => reject(new Error(`app process exited with ${code} before listening`)));
    });
    return new AppProcess(child, url);
  }

  /** The app's process id (to pin it to a CPU). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  send<T>(command: Command): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, command });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    await exited;
  }
}
