/**
 * Issue 21, items 5 and 6: Redis wherever the README promises atomic commands. Every client that
 * connect-redis 7 and 9 accept, as the app's session store with no token store configured: the
 * tokens land under `passport-logto:` (RedisTokenStore's atomic commands on the store's own client)
 * after a storm, or, where connect-redis hides its client, a warning at start-up says what is lost
 * and how to get it back, and following it gives the atomic keys. node-redis and ioredis cluster
 * clients run against a real one-node Redis cluster.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Express } from 'express';
import type session from 'express-session';
import { RedisStore as RedisStore9 } from 'connect-redis';
import RedisStore7 from 'connect-redis7';
import { createClient as createClient4, createCluster as createCluster4 } from 'redis4';
import { createClient as createClient5, createCluster as createCluster5 } from 'redis5';
import { Cluster as IoRedisCluster, Redis as IoRedis } from 'ioredis';
import { LogtoError, RedisTokenStore, type LogtoStrategy, type TokenStore } from '../../lib/index.js';
import { startApp, type RunningApp } from '../support/app.js';
import { captureWarnings, passportLogtoWarnings } from '../support/warnings.js';
import { getJson, refreshRequests, signIn } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';
import { freePort, startRedis, type RedisClient, type RunningRedis } from '../support/redis.js';

let redis: RunningRedis;
let admin: RedisClient;
let provider: TestProvider;
const closers: Array<() => Promise<unknown>> = [];

before(async () => {
  redis = await startRedis();
  admin = await redis.client();
  provider = await startProvider();
});
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await provider.close();
  await redis.stop();
});

const resource = encodeURIComponent(API_RESOURCE);

/** passport-logto's warnings while `run` runs, kept out of the test output. */
async function warningsDuring<T>(run: () => Promise<T>): Promise<{ result: T; warnings: Error[] }> {
  const capture = captureWarnings(passportLogtoWarnings);
  try {
    // The array fills until stop() has waited a tick.
    return { result: await run(), warnings: capture.warnings };
  } finally {
    await capture.stop();
  }
}

const tokenRoute = (express: Express, logto: LogtoStrategy): void => {
  express.get('/token', (req, res, next) => {
    logto
      .client(req)
      .getAccessToken(typeof req.query.resource === 'string' ? req.query.resource : undefined)
      .then((token) => res.json({ token }), next);
  });
};

/** Two instances of one app on one session store (one cookie), as behind a load balancer. */
async function twoInstances(store: session.Store, tokenStore?: TokenStore): Promise<[RunningApp, RunningApp]> {
  const cookieName = `sid-redis-${Math.random().toString(36).slice(2)}`;
  const strategy = { resources: [API_RESOURCE], ...(tokenStore ? { tokenStore } : {}) };
  const first = await startApp(provider, { store, cookieName, strategy, routes: tokenRoute });
  const second = await startApp(provider, { store, cookieName, strategy, routes: tokenRoute, instanceOf: first.registered });
  closers.push(() => first.close(), () => second.close());
  return [first, second];
}

/**
 * Signs in, then sends 40 requests at once over both instances for a resource token that no
 * request has yet: with atomic commands, Logto sees exactly one refresh.
 */
async function storm([first, second]: [RunningApp, RunningApp]): Promise<void> {
  const browser = new TestBrowser();
  await signIn(browser, provider, first);
  provider.resetRequests();
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => getJson<{ token?: string; error?: string }>(browser, `${(i % 2 ? second : first).url}/token?resource=${resource}`)),
  );
  for (const result of results) assert.equal(result.status, 200, JSON.stringify(result.body));
  assert.equal(new Set(results.map((result) => result.body.token)).size, 1, 'every request got the same token');
  assert.equal(refreshRequests(provider).length, 1, 'exactly one refresh across the instances');
}

/** The keys of sign-in records in Redis, by where they were written. */
async function recordKeys(): Promise<{ atomic: string[]; throughSessions: string[] }> {
  return { atomic: await admin.keys('passport-logto:tokens:*'), throughSessions: await admin.keys('sess:passport-logto:*') };
}

const notAtomic = (warning: Error): boolean => (warning as Error & { code?: string }).code === 'PASSPORT_LOGTO_NOT_ATOMIC';

describe('connect-redis 9 as the session store, no token store configured', () => {
  const clients = {
    'node-redis 4': async () => {
      const client = await createClient4({ url: redis.url }).connect();
      closers.push(() => client.quit());
      return client;
    },
    'node-redis 5': async () => {
      const client = await createClient5({ url: redis.url }).connect();
      closers.push(() => client.quit());
      return client;
    },
  };
  for (const [name, connect] of Object.entries(clients)) {
    test(`${name}: no 500, no warning, and the atomic keys after a storm`, async () => {
      await admin.flushAll();
      const client = await connect();
      const { warnings } = await warningsDuring(async () => storm(await twoInstances(new RedisStore9({ client: client as never }))));
      assert.deepEqual(warnings.filter(notAtomic), [], 'no warning: the client is used as it is');
      const keys = await recordKeys();
      assert.equal(keys.atomic.length, 1, 'the record under passport-logto:');
      assert.deepEqual(keys.throughSessions, [], 'nothing under sess:passport-logto:');
    });
  }
});

describe('connect-redis 7 as the session store', () => {
  const clients = {
    'node-redis 4': async () => {
      const client = await createClient4({ url: redis.url }).connect();
      closers.push(() => client.quit());
      return client;
    },
    ioredis: async () => {
      const client = new IoRedis(redis.url);
      closers.push(() => client.quit());
      return client;
    },
  };
  for (const [name, connect] of Object.entries(clients)) {
    test(`${name}: it hides its client, so a warning at start-up names what is lost and RedisTokenStore; following it gives the atomic keys after a storm`, async () => {
      await admin.flushAll();
      const client = await connect();
      const store = new RedisStore7({ client });
      const [first] = await twoInstances(store);
      const { warnings } = await warningsDuring(async () => {
        const browser = new TestBrowser();
        await signIn(browser, provider, first);
        await signIn(new TestBrowser(), provider, first);
      });
      const named = warnings.filter(notAtomic);
      assert.equal(named.length, 1, 'one warning for the store');
      assert.match(named[0]?.message ?? '', /more than once/);
      assert.match(named[0]?.message ?? '', /new RedisTokenStore\(client\)/);
      assert.equal((await recordKeys()).atomic.length, 0, 'without the token store, the tokens went through the session store');

      await admin.flushAll();
      const { warnings: after } = await warningsDuring(async () => storm(await twoInstances(new RedisStore7({ client }), new RedisTokenStore(client))));
      assert.deepEqual(after.filter(notAtomic), [], 'no warning with a token store');
      const keys = await recordKeys();
      assert.equal(keys.atomic.length, 1, 'the record under passport-logto:');
      assert.deepEqual(keys.throughSessions, []);
    });
  }
});

describe('other clients', () => {
  test('node-redis 4 in legacy mode: its promise API under v4 is found and used', async () => {
    await admin.flushAll();
    const client = createClient4({ url: redis.url, legacyMode: true });
    await client.connect();
    closers.push(() => client.v4.quit());
    // connect-redis 6 and older took such clients; only passport-logto's reading of the store is exercised here.
    const store = { client, get() {}, set() {}, destroy() {} };
    const { redisClientOfSessionStore } = await import('../../lib/store/redis-token-store.js');
    const found = redisClientOfSessionStore(store);
    assert.ok(found, 'recognised');
    const tokens = new RedisTokenStore(found);
    assert.equal(await tokens.setIfAbsent('probe', 'a', 10_000), true);
    assert.equal(await tokens.setIfAbsent('probe', 'b', 10_000), false);
    assert.equal(await tokens.get('probe'), 'a');
    const direct = new RedisTokenStore(client as never);
    assert.equal(await direct.setIfAbsent('probe', 'c', 10_000), false, 'given as it is, too');
    assert.equal(await direct.get('probe'), 'a');
  });

  test("a session store whose client is no Redis client (memcached's, say) is left alone, without a warning", async () => {
    const { redisClientOfSessionStore } = await import('../../lib/store/redis-token-store.js');
    const { result, warnings } = await warningsDuring(async () => redisClientOfSessionStore({ client: { get() {}, set() {}, del() {} } }));
    assert.equal(result, undefined);
    assert.deepEqual(warnings.filter(notAtomic), []);
  });
});

// ---------------------------------------------------------------------------
// Cluster clients, against a real one-node Redis cluster
// ---------------------------------------------------------------------------

/** redis-server in cluster mode, owning every slot itself. */
async function startOneNodeCluster(): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'passport-logto-cluster-'));
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-announce-ip', '127.0.0.1', '--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`redis-server (cluster) did not start:\n${output}`)), 10_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const url = `redis://127.0.0.1:${port}`;
  const setup = await createClient5({ url }).connect();
  await setup.sendCommand(['CLUSTER', 'ADDSLOTSRANGE', '0', '16383']);
  for (let i = 0; i < 100 && !String(await setup.sendCommand(['CLUSTER', 'INFO'])).includes('cluster_state:ok'); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await setup.quit();
  return {
    url,
    port,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('cluster clients', () => {
  let cluster: Awaited<ReturnType<typeof startOneNodeCluster>>;
  /** Closed before the cluster stops: ioredis would otherwise retry a stopped cluster for ever. */
  const clusterClients: Array<() => Promise<unknown>> = [];
  before(async () => {
    cluster = await startOneNodeCluster();
  });
  after(async () => {
    for (const close of clusterClients) await close().catch(() => undefined);
    await cluster.stop();
  });

  /** Every operation, on keys in different slots. */
  async function roundTrip(tokens: RedisTokenStore): Promise<void> {
    for (const key of ['tokens:a', 'lock:b', 'callback:c']) {
      assert.equal(await tokens.setIfAbsent(key, 'one', 10_000), true, key);
      assert.equal(await tokens.setIfAbsent(key, 'two', 10_000), false, key);
      assert.equal(await tokens.get(key), 'one');
      await tokens.deleteIfEquals(key, 'two');
      assert.equal(await tokens.get(key), 'one', 'another value is left alone');
      await tokens.deleteIfEquals(key, 'one');
      assert.equal(await tokens.get(key), undefined);
      await tokens.set(key, 'three', 10_000);
      await tokens.delete(key);
      assert.equal(await tokens.get(key), undefined);
    }
  }

  test('RedisTokenStore on a node-redis 4 and 5 cluster (sendCommand(firstKey, isReadonly, args)) and an ioredis Cluster', async () => {
    const four = createCluster4({ rootNodes: [{ url: cluster.url }] });
    await four.connect();
    const five = await createCluster5({ rootNodes: [{ url: cluster.url }] }).connect();
    const io = new IoRedisCluster([{ host: '127.0.0.1', port: cluster.port }]);
    clusterClients.push(() => four.quit(), () => five.quit(), () => io.quit());
    await roundTrip(new RedisTokenStore(four));
    await roundTrip(new RedisTokenStore(five));
    await roundTrip(new RedisTokenStore(io));
  });

  test('connect-redis 9 on a node-redis 5 cluster: its client is used as it is, the atomic keys after a storm', async () => {
    const client = await createCluster5({ rootNodes: [{ url: cluster.url }] }).connect();
    clusterClients.push(() => client.quit());
    const { warnings } = await warningsDuring(async () => storm(await twoInstances(new RedisStore9({ client: client as never }))));
    assert.deepEqual(warnings.filter(notAtomic), []);
    assert.equal((await client.keys('passport-logto:tokens:*')).length, 1);
    assert.deepEqual(await client.keys('sess:passport-logto:*'), []);
  });

  test('an object that is no Redis client is refused with invalid_config', () => {
    assert.throws(
      () => new RedisTokenStore({ get() {} } as never),
      (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config',
    );
  });
});
