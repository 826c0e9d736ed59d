/**
 * Storage: one in-memory store shared by every provider instance (a key rotation rebuilds the
 * provider, and state must survive that). Logto's refresh-token grace lives here too, because
 * oidc-provider decides reuse from what the adapter returns.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';

interface StoredRecord {
  payload: AdapterPayload;
  expiresAt: number | undefined;
  /** ms timestamp of the first consumption; drives the refresh-token reuse leeway. */
  consumedAt: number | undefined;
}

export class MemoryStore {
  readonly records = new Map<string, StoredRecord>();
  readonly keysByGrant = new Map<string, Set<string>>();
  readonly keysByUid = new Map<string, string>();
  readonly keysByUserCode = new Map<string, string>();
  /** Grants revoked so far: by revocation, or for a refresh token or code used again. */
  revokedGrants = 0;

  constructor(readonly reuseLeewayMs: number) {}

  live(key: string): StoredRecord | undefined {
    const record = this.records.get(key);
    if (record?.expiresAt !== undefined && record.expiresAt <= Date.now()) {
      this.records.delete(key);
      return undefined;
    }
    return record;
  }
}

export class StoreAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly store: MemoryStore,
  ) {}

  private key(id: string): string {
    return `${this.model}:${id}`;
  }

  private read(key: string | undefined): AdapterPayload | undefined {
    if (key === undefined) return undefined;
    const record = this.store.live(key);
    if (!record) return undefined;
    const payload = structuredClone(record.payload);
    // Logto keeps a used refresh token valid for a few seconds so that racing
    // tabs don't kill the grant; oidc-provider revokes on any reuse of a
    // consumed token, so hide the consumption while the leeway lasts.
    if (
      this.model === 'RefreshToken'
      && record.consumedAt !== undefined
      && Date.now() - record.consumedAt <= this.store.reuseLeewayMs
    ) {
      delete payload.consumed;
    }
    return payload;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const key = this.key(id);
    this.store.records.set(key, {
      payload: structuredClone(payload),
      expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined,
      consumedAt: payload.consumed ? Date.now() : undefined,
    });
    if (payload.grantId) {
      const keys = this.store.keysByGrant.get(payload.grantId) ?? new Set<string>();
      keys.add(key);
      this.store.keysByGrant.set(payload.grantId, keys);
    }
    if (typeof payload.uid === 'string') this.store.keysByUid.set(payload.uid, key);
    if (typeof payload.userCode === 'string') this.store.keysByUserCode.set(payload.userCode, key);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.read(this.key(id));
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.read(this.store.keysByUid.get(uid));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.read(this.store.keysByUserCode.get(userCode));
  }

  async consume(id: string): Promise<void> {
    const record = this.store.live(this.key(id));
    // Keep the first consumption time, or re-use inside the leeway would extend it.
    if (record && record.consumedAt === undefined) {
      record.consumedAt = Date.now();
      record.payload.consumed = Math.floor(record.consumedAt / 1000);
    }
  }

  async destroy(id: string): Promise<void> {
    this.store.records.delete(this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    if (this.store.keysByGrant.has(grantId)) this.store.revokedGrants += 1;
    // The index spans models, so the first call already removes every artifact.
    for (const key of this.store.keysByGrant.get(grantId) ?? []) this.store.records.delete(key);
    this.store.keysByGrant.delete(grantId);
  }
}
