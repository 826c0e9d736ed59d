import { LogtoError } from '../errors.js';
import type { TokenStore } from './token-store.js';

/** A node-redis client (v4, v5 or later), connected. */
export interface NodeRedisClientLike {
  sendCommand(args: string[]): Promise<unknown>;
}

/**
 * A node-redis cluster client (`createCluster`, v4 or later), connected: its `sendCommand` takes
 * the key that picks the node, and whether the command only reads.
 */
export interface NodeRedisClusterLike {
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
  /** The cluster's master nodes: what tells a cluster from a single client. */
  readonly masters: unknown;
}

/** An ioredis client (or cluster). */
export interface IoRedisClientLike {
  call(command: string, ...args: string[]): Promise<unknown>;
}

export type RedisClientLike = NodeRedisClientLike | NodeRedisClusterLike | IoRedisClientLike;

export interface RedisTokenStoreOptions {
  /** Prefix of every key written. Default `passport-logto:`. */
  prefix?: string;
}

const deleteIfEqualsScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";
/** Replaces KEYS[1] with ARGV[2] (for ARGV[3] ms) only while it holds ARGV[1]: one key, so a cluster takes it too. */
const setIfEqualsScript = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";
/** Adds ARGV[2..] to the set and gives it at least ARGV[1] ms to live, in one step. */
const addToSetScript = [
  'for i = 2, #ARGV do redis.call(\'sadd\', KEYS[1], ARGV[i]) end',
  "local ttl = tonumber(ARGV[1])",
  "if redis.call('exists', KEYS[1]) == 1 and redis.call('pttl', KEYS[1]) < ttl then redis.call('pexpire', KEYS[1], ttl) end",
  'return 1',
].join('\n');

function isIoRedis(client: RedisClientLike): client is IoRedisClientLike {
  return typeof (client as Partial<IoRedisClientLike>).call === 'function';
}

/** node-redis clusters (v4 and later) have `masters`; a single client has not. */
function isNodeRedisCluster(client: RedisClientLike): client is NodeRedisClusterLike {
  return 'masters' in client && typeof (client as Partial<NodeRedisClusterLike>).sendCommand === 'function';
}

/** Sends a raw command about one key; `readonly` lets a cluster read from any node of that key. */
type Send = (key: string, readonly: boolean, args: string[]) => Promise<unknown>;

/**
 * A {@link TokenStore} on Redis, taking a node-redis (4 or later) or ioredis client, or either's
 * cluster client, as it is.
 * Commands are sent raw, so that option spellings that differ between client versions (NX and
 * PX in particular) cannot be dropped silently. Its atomic set-if-absent makes a storm of
 * requests across instances cost exactly one refresh.
 */
export class RedisTokenStore implements TokenStore {
  private readonly prefix: string;
  private readonly send: Send;

  constructor(given: RedisClientLike, options: RedisTokenStoreOptions = {}) {
    if (typeof given !== 'object' || given === null) {
      throw new LogtoError('invalid_config', 'passport-logto: new RedisTokenStore(client) needs a node-redis or ioredis client.');
    }
    // A node-redis 4 client in legacy mode is used through its promise API.
    const client = usable(given) ?? given;
    if (isIoRedis(client)) {
      // ioredis's Cluster routes each command by its key itself.
      this.send = (_key, _readonly, [command = '', ...args]) => client.call(command, ...args);
    } else if (isNodeRedisCluster(client)) {
      this.send = (key, readonly, args) => client.sendCommand(key, readonly, args);
    } else if (typeof client.sendCommand === 'function') {
      this.send = (_key, _readonly, args) => client.sendCommand(args);
    } else {
      throw new LogtoError(
        'invalid_config',
        'passport-logto: RedisTokenStore needs a node-redis client or cluster (sendCommand) or an ioredis client or cluster (call).',
      );
    }
    this.prefix = options.prefix ?? 'passport-logto:';
  }

  async get(key: string): Promise<string | undefined> {
    const value = await this.send(this.prefix + key, true, ['GET', this.prefix + key]);
    if (value === null || value === undefined) return undefined;
    return typeof value === 'string' ? value : String(value);
  }

  async set(key: string, value: string, ttl: number): Promise<void> {
    await this.send(this.prefix + key, false, ['SET', this.prefix + key, value, 'PX', String(Math.max(1, Math.ceil(ttl)))]);
  }

  async delete(key: string): Promise<void> {
    await this.send(this.prefix + key, false, ['DEL', this.prefix + key]);
  }

  async setIfAbsent(key: string, value: string, ttl: number): Promise<boolean> {
    const reply = await this.send(this.prefix + key, false, ['SET', this.prefix + key, value, 'PX', String(Math.max(1, Math.ceil(ttl))), 'NX']);
    return reply === 'OK';
  }

  async deleteIfEquals(key: string, value: string): Promise<void> {
    await this.send(this.prefix + key, false, ['EVAL', deleteIfEqualsScript, '1', this.prefix + key, value]);
  }

  async setIfEquals(key: string, expected: string, value: string, ttl: number): Promise<boolean> {
    const reply = await this.send(this.prefix + key, false, ['EVAL', setIfEqualsScript, '1', this.prefix + key, expected, value, String(Math.max(1, Math.ceil(ttl)))]);
    return Number(reply) === 1;
  }

  async addToSet(key: string, members: string[], ttl: number): Promise<void> {
    await this.send(this.prefix + key, false, ['EVAL', addToSetScript, '1', this.prefix + key, String(Math.max(1, Math.ceil(ttl))), ...members]);
  }

  async setMembers(key: string): Promise<string[]> {
    const reply = await this.send(this.prefix + key, true, ['SMEMBERS', this.prefix + key]);
    return Array.isArray(reply) ? reply.map((member) => String(member)) : [];
  }
}

/** Session stores already warned about, so that each warns once. */
const warnedStores = new WeakSet<object>();

/** The property's value, or undefined when reading it throws (node-redis 4's `v4` outside legacy mode). */
function read(target: object, name: string): unknown {
  try {
    return (target as Record<string, unknown>)[name];
  } catch {
    return undefined;
  }
}

/** A client whose commands passport-logto can send as they are: node-redis (or its cluster) or ioredis. */
function usable(candidate: unknown): RedisClientLike | undefined {
  if (typeof candidate !== 'object' || candidate === null) return undefined;
  // node-redis 4 in legacy mode keeps the promise API under `v4`; outside legacy mode, reading it throws.
  const modern = read(candidate, 'v4');
  if (typeof modern === 'object' && modern !== null && typeof read(modern, 'sendCommand') === 'function') return modern as RedisClientLike;
  if (typeof read(candidate, 'call') === 'function' || typeof read(candidate, 'sendCommand') === 'function') return candidate as RedisClientLike;
  return undefined;
}

/** connect-redis 7's wrapper around its client: Redis's commands as functions, and the client out of reach. */
function isHiddenRedisClient(client: object): boolean {
  return ['get', 'set', 'del', 'expire', 'mget', 'scanIterator'].every((name) => typeof read(client, name) === 'function');
}

/**
 * The Redis client behind a connect-redis session store, if the app's session store is one: then
 * passport-logto uses it with atomic commands, with no setup. connect-redis 8 and later keep the
 * client as it is (node-redis, its cluster, or node-redis 4 in or out of legacy mode). connect-redis
 * 7 wraps it in functions that hide it and offer no atomic command: then the tokens go through the
 * session store, and a warning (once per store) says what that loses and how to get it back.
 */
export function redisClientOfSessionStore(store: object): RedisClientLike | undefined {
  const client = read(store, 'client');
  if (typeof client !== 'object' || client === null) return undefined;
  const found = usable(client);
  if (found) return found;
  if (isHiddenRedisClient(client) && !warnedStores.has(store)) {
    warnedStores.add(store);
    process.emitWarning(
      "passport-logto: the session store's Redis client is hidden (connect-redis 7 wraps it), so the sign-ins' tokens are kept " +
        'through the session store without Redis\'s atomic commands: a storm of requests across instances may refresh a sign-in ' +
        'more than once, and a callback arriving twice at two instances at once may exchange its code twice (Logto then revokes ' +
        "that sign-in). To get them back, give the strategy the same client: tokenStore: new RedisTokenStore(client).",
      { type: 'PassportLogtoWarning', code: 'PASSPORT_LOGTO_NOT_ATOMIC' },
    );
  }
  return undefined;
}
