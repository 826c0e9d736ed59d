/**
 * Issue 20: an ended sign-in never answers alive again, whatever order an end and a refresh's
 * write land in, and whichever store keeps the records: with conditional writes (MemoryTokenStore,
 * RedisTokenStore on a real Redis, express-session's MemoryStore) the late write is refused; with
 * a store that cannot write conditionally (another session store, a custom TokenStore) every read
 * consults the end flag, which outlives the late write.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import session from 'express-session';
import { LogtoError, MemoryTokenStore, RedisTokenStore, type TokenStore } from '../../lib/index.js';
import { InProcessSessionStoreTokenStore, SessionStoreTokenStore } from '../../lib/store/session-store-adapter.js';
import { SignInRecords } from '../../lib/store/sign-in-records.js';
import type { TokenRecord } from '../../lib/store/token-record.js';
import { startRedis, type RunningRedis } from '../support/redis.js';

const ttl = 3_600_000;
let redis: RunningRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
});

/** How each kind of store is made: one shared store per test, as Redis is for every instance. */
const kinds: Array<{ name: string; conditional: boolean; make: () => Promise<TokenStore> }> = [
  { name: 'MemoryTokenStore', conditional: true, make: () => Promise.resolve(new MemoryTokenStore()) },
  { name: 'RedisTokenStore (real Redis)', conditional: true, make: async () => new RedisTokenStore(await redis.client(), { prefix: `t${Math.random()}:` }) },
  { name: "express-session's MemoryStore", conditional: true, make: () => Promise.resolve(new InProcessSessionStoreTokenStore(new session.MemoryStore())) },
  { name: 'another session store (no conditional write)', conditional: false, make: () => Promise.resolve(new SessionStoreTokenStore(new session.MemoryStore())) },
  {
    name: 'a custom TokenStore with get, set and delete only',
    conditional: false,
    make: () => {
      const inner = new MemoryTokenStore();
      return Promise.resolve({ get: (key) => inner.get(key), set: (key, value, life) => inner.set(key, value, life), delete: (key) => inner.delete(key) });
    },
  },
];

/**
 * One instance's view of the shared store: its record writes wait for `gate` (a slow link), and
 * `failEndedReads` reads of the end flag fail (a blip, a failover). It offers what the store offers.
 */
function viewOf(shared: TokenStore): TokenStore & { gate: Promise<void> | undefined; failEndedReads: number; failRecordWrites: number } {
  const view = {
    gate: undefined as Promise<void> | undefined,
    failEndedReads: 0,
    failRecordWrites: 0,
    async get(key: string) {
      if (key.startsWith('ended:') && view.failEndedReads > 0) {
        view.failEndedReads -= 1;
        throw new Error('ECONNRESET');
      }
      return shared.get(key);
    },
    async set(key: string, value: string, life: number) {
      await view.beforeRecordWrite(key);
      return shared.set(key, value, life);
    },
    delete: (key: string) => shared.delete(key),
    async beforeRecordWrite(key: string) {
      if (!key.startsWith('tokens:')) return;
      if (view.failRecordWrites > 0) {
        view.failRecordWrites -= 1;
        throw new Error('ETIMEDOUT');
      }
      if (view.gate) await view.gate;
    },
  };
  const extra: Partial<TokenStore> = {};
  if (shared.setIfAbsent) extra.setIfAbsent = (key, value, life) => shared.setIfAbsent!(key, value, life);
  if (shared.deleteIfEquals) extra.deleteIfEquals = (key, value) => shared.deleteIfEquals!(key, value);
  if (shared.setIfEquals) {
    extra.setIfEquals = async (key, expected, value, life) => {
      await view.beforeRecordWrite(key);
      return shared.setIfEquals!(key, expected, value, life);
    };
  }
  return Object.assign(view, extra);
}

const record = { idToken: 'x.y.z', refreshToken: 'rt-1', accessToken: { token: 'at', expiresAt: Math.floor(Date.now() / 1000) + 3600 } } satisfies TokenRecord;

function gate(): { open: () => void; promise: Promise<void> } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { open, promise };
}

describe('an end wins over a refresh\'s write, in whatever order they land', () => {
  for (const kind of kinds) {
    describe(kind.name, () => {
      test('the write lands after the end and the writer\'s check of the end flag fails: every instance reads the sign-in as ended', async () => {
        const shared = await kind.make();
        const viaB = viewOf(shared);
        const a = new SignInRecords({ tokenStore: shared, recordTtl: ttl });
        const b = new SignInRecords({ tokenStore: viaB, recordTtl: ttl });
        const c = new SignInRecords({ tokenStore: shared, recordTtl: ttl });
        await a.create(shared, 'sign-in-1', record);

        const slow = gate();
        viaB.gate = slow.promise;
        viaB.failEndedReads = 1;
        const refreshing = b.update(viaB, 'sign-in-1', (current) => ({ ...current, refreshToken: 'rt-2' }));
        const outcome = refreshing.then((value) => value, (error: unknown) => error);
        await new Promise((resolve) => setTimeout(resolve, 20)); // B has read the record; its write is on its way
        await a.end(shared, 'sign-in-1'); // sign-out on A
        slow.open(); // B's write arrives
        const settled = await outcome;
        assert.ok(settled === undefined || settled instanceof LogtoError, 'B\'s refresh does not report a saved record');
        assert.equal(await c.read(shared, 'sign-in-1'), undefined, 'instance C reads the sign-in as ended');
        assert.equal(await b.read(viaB, 'sign-in-1'), undefined, 'so does B');
        if (kind.conditional) {
          const raw = await shared.get('tokens:sign-in-1');
          assert.ok(raw !== undefined && raw !== null && !raw.includes('rt-2'), 'the refreshed tokens never reached the store');
        }
      });

      test('the end lands between a refresh\'s read and its write: the sign-in stays ended', async () => {
        const shared = await kind.make();
        const viaB = viewOf(shared);
        const a = new SignInRecords({ tokenStore: shared, recordTtl: ttl });
        const b = new SignInRecords({ tokenStore: viaB, recordTtl: ttl });
        await a.create(shared, 'sign-in-2', record);
        const slow = gate();
        viaB.gate = slow.promise;
        const refreshing = b.update(viaB, 'sign-in-2', (current) => ({ ...current, refreshToken: 'rt-2' }));
        await new Promise((resolve) => setTimeout(resolve, 20));
        await a.end(shared, 'sign-in-2');
        slow.open();
        assert.equal(await refreshing, undefined, 'the refresh learns that the sign-in ended');
        assert.equal(await new SignInRecords({ tokenStore: shared, recordTtl: ttl }).read(shared, 'sign-in-2'), undefined);
      });

      test('a refreshed record whose save failed is not written back over an end that came meanwhile', async () => {
        const shared = await kind.make();
        const viaB = viewOf(shared);
        const a = new SignInRecords({ tokenStore: shared, recordTtl: ttl });
        const b = new SignInRecords({ tokenStore: viaB, recordTtl: ttl });
        await a.create(shared, 'sign-in-3', record);
        viaB.failRecordWrites = 1;
        await assert.rejects(b.update(viaB, 'sign-in-3', (current) => ({ ...current, refreshToken: 'rt-2' })), (error: unknown) => error instanceof LogtoError);
        await a.end(shared, 'sign-in-3');
        assert.equal(await b.read(viaB, 'sign-in-3'), undefined, 'B drops its unsaved copy');
        assert.equal(await new SignInRecords({ tokenStore: shared, recordTtl: ttl }).read(shared, 'sign-in-3'), undefined);
      });

      test('without an end, the refreshed record is saved and read everywhere', async () => {
        const shared = await kind.make();
        const viaB = viewOf(shared);
        const b = new SignInRecords({ tokenStore: viaB, recordTtl: ttl });
        await b.create(viaB, 'sign-in-4', record);
        const saved = await b.update(viaB, 'sign-in-4', (current) => ({ ...current, refreshToken: 'rt-2' }));
        assert.equal(saved?.refreshToken, 'rt-2');
        assert.equal((await new SignInRecords({ tokenStore: shared, recordTtl: ttl }).read(shared, 'sign-in-4'))?.refreshToken, 'rt-2');
      });
    });
  }
});
