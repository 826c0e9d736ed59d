import { LogtoError } from '../errors.js';
import type { TokenStore } from './token-store.js';

/** A node-redis client (v4, v5 or later), connected. */
export interface NodeRedisClientLike {
  sendCommand(args: string[]): Promise<unknown>;
}

/** An ioredis client (or cluster). */
export interface IoRedisClientLike {
  call(command: string, ...args: string[]): Promise<unknown>;
}

export type RedisClientLike = NodeRedisClientLike | IoRedisClientLike;

export interface RedisTokenStoreOptions {
  /** Prefix of every key written. Default `passport-logto:`. */
  prefix?: string;
}

const deleteIfEqualsScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";
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

/**
 * A {@link TokenStore} on Redis, taking a node-redis (4 or later) or ioredis client as it is.
 * Commands are sent raw, so that option spellings that differ between client versions (NX and
 * PX in particular) cannot be dropped silently. Its atomic set-if-absent makes a storm of
 * requests across instances cost exactly one refresh.
 */
export class RedisTokenStore implements TokenStore {
  private readonly prefix: string;
  private readonly send: (args: string[]) => Promise<unknown>;

  constructor(client: RedisClientLike, options: RedisTokenStoreOptions = {}) {
    if (typeof client !== 'object' || client === null) {
      throw new LogtoError('invalid_config', 'passport-logto: new RedisTokenStore(client) needs a node-redis or ioredis client.');
    }
    if (isIoRedis(client)) {
      this.send = ([command = '', ...args]) => client.call(command, ...args);
    } else if (typeof client.sendCommand === 'function') {
      this.send = (args) => client.sendCommand(args);
    } else {
      throw new LogtoError('invalid_config', 'passport-logto: RedisTokenStore needs a node-redis client (sendCommand) or an ioredis client (call).');
    }
    this.prefix = options.prefix ?? 'passport-logto:';
  }

  async get(key: string): Promise<string | undefined> {
    const value = await this.send(['GET', this.prefix + key]);
    if (value === null || value === undefined) return undefined;
    return typeof value === 'string' ? value : String(value);
  }

  async set(key: string, value: string, ttl: number): Promise<void> {
    await this.send(['SET', this.prefix + key, value, 'PX', String(Math.max(1, Math.ceil(ttl)))]);
  }

  async delete(key: string): Promise<void> {
    await this.send(['DEL', this.prefix + key]);
  }

  async setIfAbsent(key: string, value: string, ttl: number): Promise<boolean> {
    const reply = await this.send(['SET', this.prefix + key, value, 'PX', String(Math.max(1, Math.ceil(ttl))), 'NX']);
    return reply === 'OK';
  }

  async deleteIfEquals(key: string, value: string): Promise<void> {
    await this.send(['EVAL', deleteIfEqualsScript, '1', this.prefix + key, value]);
  }

  async addToSet(key: string, members: string[], ttl: number): Promise<void> {
    await this.send(['EVAL', addToSetScript, '1', this.prefix + key, String(Math.max(1, Math.ceil(ttl))), ...members]);
  }

  async setMembers(key: string): Promise<string[]> {
    const reply = await this.send(['SMEMBERS', this.prefix + key]);
    return Array.isArray(reply) ? reply.map((member) => String(member)) : [];
  }
}

/**
 * The Redis client behind a connect-redis session store, if the app's session store is one: then
 * passport-logto uses it with atomic commands, with no setup.
 */
export function redisClientOfSessionStore(store: object): RedisClientLike | undefined {
  let client = (store as { client?: unknown }).client;
  if (typeof client !== 'object' || client === null) return undefined;
  // node-redis 4 in legacy mode keeps the promise API under `v4`.
  const modern = (client as { v4?: unknown }).v4;
  if (typeof modern === 'object' && modern !== null) client = modern;
  const candidate = client as Partial<NodeRedisClientLike & IoRedisClientLike>;
  if (typeof candidate.call === 'function' || typeof candidate.sendCommand === 'function') return candidate as RedisClientLike;
  return undefined;
}
