import type { ResolvedConfig } from '../configuration.js';
import { LogtoError } from '../errors.js';
import type { LogtoConnection, RefreshParameters, TokenEndpointResponse } from '../logto/connection.js';
import type { SessionIndex } from './session-index.js';
import type { SignInRecords } from './sign-in-records.js';
import { accessTokenKey, digest, storedAccessTokenOf, type StoredAccessToken, type TokenRecord } from './token-record.js';
import type { TokenStore } from './token-store.js';
import { debug } from '../debug.js';

export interface RefreshRequest {
  resource: string | undefined;
  organizationId: string | undefined;
  /** Refresh even when a usable token is cached. */
  force: boolean;
}

export interface RefreshOutcome {
  record: TokenRecord;
  token: StoredAccessToken;
}

/** Written before a refresh token is sent, so that a lost answer is known even after a restart. */
interface SentMark {
  /** Digest of the refresh token that was sent. */
  rt: string;
  /** When it was first sent, in milliseconds. */
  at: number;
}

const nowInSeconds = (): number => Math.floor(Date.now() / 1000);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Milliseconds between two attempts of a refresh whose answer was lost. */
const retryPause = 250;
/** Sign-ins whose last refresh failed for an outage, kept in this process at most. */
const maxOutages = 10_000;

/** A refresh of a sign-in that failed because Logto was down: the refreshes queued behind it share it. */
interface Outage {
  /** Digest of the refresh token it was sent with: kept, and still the record's. */
  rt: string;
  /** When it failed, in milliseconds. */
  failedAt: number;
  error: unknown;
}

/**
 * Refreshes a sign-in's tokens under Logto's rules. Logto accepts a used refresh token for 3 s and
 * then revokes the whole grant, so:
 * - one refresh per sign-in runs at a time (in the process, and across instances through the
 *   store's lock), each reading the newest refresh token fresh from the record;
 * - requests that want the same token while it is being refreshed share that refresh's outcome;
 * - the record is written as soon as Logto answers, before the ID token is checked;
 * - an answer that was lost is asked for again with the same refresh token within the retry
 *   window; past it the request fails with Logto's error and the refresh token stays, so that an
 *   outage of Logto ends no sign-in: only Logto's `invalid_grant` does.
 */
export class Refresher {
  private readonly inFlight = new Map<string, Promise<RefreshOutcome>>();
  /** The last outage each sign-in's refresh met in this process, oldest first. */
  private readonly outages = new Map<string, Outage>();

  constructor(
    private readonly config: ResolvedConfig,
    private readonly provider: LogtoConnection,
    private readonly records: SignInRecords,
    /** The back-channel logout index, while sign-ins are indexed: its entries live as long as the records. */
    private readonly index: () => SessionIndex | undefined = () => undefined,
  ) {}

  isFresh(token: StoredAccessToken | undefined): token is StoredAccessToken {
    return token !== undefined && token.expiresAt - this.config.accessTokenExpiryMargin > nowInSeconds();
  }

  refresh(store: TokenStore, signInId: string, request: RefreshRequest): Promise<RefreshOutcome> {
    const flight = `${signInId}\u0000${accessTokenKey(request.resource, request.organizationId)}\u0000${request.force}`;
    const joined = this.inFlight.get(flight);
    if (joined) return joined;
    const queuedAt = Date.now();
    const started = this.records
      .exclusive(store, signInId, () => this.refreshAlone(store, signInId, request, queuedAt), {
        lockTtl: lockTtl(this.config),
        wait: lockTtl(this.config),
      })
      .finally(() => {
        if (this.inFlight.get(flight) === started) this.inFlight.delete(flight);
      });
    this.inFlight.set(flight, started);
    return started;
  }

  /**
   * Drops cached access tokens from the record (which ones: see `LogtoClient.clearAccessTokens`),
   * keeping the ID and refresh tokens. Under the refresh lock: a refresh that lands between this
   * read and this write would otherwise lose its rotated refresh token. Resolves to the record as
   * written, or undefined when the sign-in has ended.
   */
  clearAccessTokens(store: TokenStore, signInId: string, which: { resource?: string; organizationId?: string }): Promise<TokenRecord | undefined> {
    const { resource, organizationId } = which;
    const drops = (key: string): boolean => {
      const split = key.lastIndexOf('#');
      return (resource === undefined || key.slice(0, split) === resource) && (organizationId === undefined || key.slice(split + 1) === organizationId);
    };
    // The userinfo token has neither a resource nor an organization: only clearing everything drops it.
    const keepUserinfoToken = resource !== undefined || organizationId !== undefined;
    return this.records.exclusive(
      store,
      signInId,
      () =>
        this.records.update(store, signInId, (record) => {
          const { accessToken, resourceTokens, ...rest } = record;
          const kept = Object.fromEntries(Object.entries(resourceTokens ?? {}).filter(([key]) => !drops(key)));
          return {
            ...rest,
            ...(keepUserinfoToken && accessToken !== undefined ? { accessToken } : {}),
            ...(Object.keys(kept).length > 0 ? { resourceTokens: kept } : {}),
          };
        }).then(async (updated) => {
          if (updated) await this.index()?.extend(store, updated);
          return updated;
        }),
      { lockTtl: lockTtl(this.config), wait: lockTtl(this.config) },
    );
  }

  /**
   * A 0.1.0 session's sign-in, moved into its own record once Logto confirms that its grant is
   * alive (see {@link SignInRecords.adopt}); undefined when it has ended. Rejects during an
   * outage of Logto: nothing is adopted, nor given up, on doubt.
   */
  adoptLegacy(store: TokenStore, signInId: string, legacy: TokenRecord): Promise<TokenRecord | undefined> {
    return this.records.adopt(store, signInId, legacy, (record) => this.proveGrant(store, signInId, record), {
      lockTtl: lockTtl(this.config),
      wait: lockTtl(this.config),
    });
  }

  /**
   * Refreshes with a refresh token that no record holds yet: the record with Logto's new tokens,
   * or 'ended' on `invalid_grant`. Sent and retried as any refresh; other failures reject.
   */
  private async proveGrant(store: TokenStore, signInId: string, record: TokenRecord & { refreshToken: string }): Promise<TokenRecord | 'ended'> {
    await this.provider.ready();
    let response: TokenEndpointResponse;
    try {
      response = await this.send(store, signInId, record.refreshToken, {}, Date.now());
    } catch (error) {
      if (error instanceof LogtoError && error.oauthError === 'invalid_grant') return 'ended';
      throw error;
    }
    const rotated = response.refresh_token;
    if (response.id_token) {
      try {
        await this.provider.verifyIdToken(response.id_token, { replacing: record.idToken });
      } catch (error) {
        // Not adopted: the new refresh token must not outlive the refusal.
        if (rotated) await this.provider.revokeRefreshToken(rotated).catch(() => undefined);
        throw error;
      }
    }
    return {
      ...record,
      ...(response.id_token ? { idToken: response.id_token } : {}),
      refreshToken: rotated ?? record.refreshToken,
      accessToken: storedAccessTokenOf(response),
    };
  }

  private async refreshAlone(store: TokenStore, signInId: string, request: RefreshRequest, queuedAt: number): Promise<RefreshOutcome> {
    const key = accessTokenKey(request.resource, request.organizationId);
    const record = await this.records.read(store, signInId);
    if (!record) throw signedOut('The Logto sign-in has ended; sign in again.');
    const cached = cachedToken(record, key);
    // Another request or instance may have refreshed while this one waited for its turn.
    if (!request.force && this.isFresh(cached)) return { record, token: cached };
    const refreshToken = record.refreshToken;
    if (!refreshToken) {
      throw signedOut('The session has no refresh token (Logto issues one only with prompt=consent, and a lost refresh answer drops it); sign in again.');
    }

    // Queued behind a refresh that Logto's outage failed (with this same refresh token): the same
    // failure, rather than a retry window of its own per token the request needs.
    const outage = this.outages.get(signInId);
    if (outage && queuedAt <= outage.failedAt && outage.rt === digest(refreshToken)) throw outage.error;

    // Discovery first: a failure there must not count as a refresh token sent.
    await this.provider.ready();
    const markKey = sentMarkKey(signInId);
    const mark = await this.records.getMark<SentMark>(store, markKey);
    let firstSentAt = Date.now();
    if (mark?.rt === digest(refreshToken) && firstSentAt - mark.at < this.config.refreshRetryWindow * 1000) {
      // An attempt of another request or instance (or of this process before a restart) is still
      // within Logto's grace: this one belongs to it, so that its retries stay within the window.
      firstSentAt = mark.at;
    } else {
      await this.records.setMark(store, markKey, { rt: digest(refreshToken), at: firstSentAt } satisfies SentMark, this.config.recordTtl * 1000);
    }

    const parameters: RefreshParameters = {};
    if (request.resource !== undefined) parameters.resource = request.resource;
    if (request.organizationId !== undefined) parameters.organizationId = request.organizationId;
    let response: TokenEndpointResponse;
    try {
      response = await this.send(store, signInId, refreshToken, parameters, firstSentAt);
      this.outages.delete(signInId);
    } catch (error) {
      if (isOutage(error)) this.noteOutage(signInId, { rt: digest(refreshToken), failedAt: Date.now(), error });
      throw error;
    }

    const token = storedAccessTokenOf(response);
    // First of all, keep what Logto answered: the new refresh token is the only one that works.
    const rotated = response.refresh_token;
    debug('refresh: Logto answered%s%s; its refresh token %s', request.resource === undefined ? '' : ` for ${request.resource}`, request.organizationId === undefined ? '' : ` for organization ${request.organizationId}`, rotated ? 'rotated' : 'stays');
    const saved = await this.records.update(store, signInId, (current) => withToken({ ...current, ...(rotated ? { refreshToken: rotated } : {}) }, key, token));
    await this.records.deleteMark(store, markKey).catch(() => undefined);
    if (!saved) {
      // Signed out while Logto answered: the new refresh token must not outlive the sign-in.
      if (rotated) await this.provider.revokeRefreshToken(rotated).catch(() => undefined);
      throw signedOut('The Logto sign-in ended while its tokens were being refreshed; sign in again.');
    }
    // The record has a new life: so do its back-channel logout entries.
    await this.index()?.extend(store, saved);
    if (!response.id_token) return { record: saved, token };
    // A refreshed ID token replaces the stored one only once verified and about the same user.
    const idToken = response.id_token;
    await this.provider.verifyIdToken(idToken, { replacing: saved.idToken });
    const withIdToken = await this.records.update(store, signInId, (current) => ({ ...current, idToken }));
    return { record: withIdToken ?? { ...saved, idToken }, token };
  }

  /** Sends the refresh, asking again with the same token while Logto still accepts it. */
  private async send(
    store: TokenStore,
    signInId: string,
    refreshToken: string,
    parameters: RefreshParameters,
    firstSentAt: number,
  ): Promise<TokenEndpointResponse> {
    for (;;) {
      try {
        return await this.provider.refresh(refreshToken, parameters);
      } catch (error) {
        if (!answerMayBeLost(error)) {
          await this.records.deleteMark(store, sentMarkKey(signInId)).catch(() => undefined);
          const translated = await this.translate(error, store, signInId, parameters);
          debug('refresh: failed, and nothing was rotated: %s', translated instanceof Error ? translated.message : String(translated));
          throw translated;
        }
        const left = this.config.refreshRetryWindow * 1000 - (Date.now() - firstSentAt);
        if (left > 0) {
          // A short pause, so that a Logto (or gateway) failing fast is not hammered.
          await sleep(Math.min(retryPause, left));
          if (Date.now() - firstSentAt < this.config.refreshRetryWindow * 1000) continue;
        }
        // Past the window the refresh token is kept: only Logto's word (invalid_grant) says it is
        // dead. Had Logto rotated it, a later use ends this same sign-in, which dropping it would
        // have ended anyway; had Logto been down, the sign-in refreshes once it is back.
        await this.records.deleteMark(store, sentMarkKey(signInId)).catch(() => undefined);
        throw error;
      }
    }
  }

  private noteOutage(signInId: string, outage: Outage): void {
    this.outages.delete(signInId);
    this.outages.set(signInId, outage);
    for (const oldest of this.outages.keys()) {
      if (this.outages.size <= maxOutages) break;
      this.outages.delete(oldest);
    }
  }

  private async translate(error: unknown, store: TokenStore, signInId: string, parameters: RefreshParameters): Promise<unknown> {
    if (!(error instanceof LogtoError) || error.code !== 'token_request_failed') return error;
    const details = { cause: error, ...(error.oauthError === undefined ? {} : { oauthError: error.oauthError }) };
    switch (error.oauthError) {
      case 'invalid_grant':
        // Revoked, expired, or the user was suspended: the tokens are dead, so drop them.
        await this.records.end(store, signInId);
        return new LogtoError('not_authenticated', 'The Logto sign-in has ended (the refresh token was revoked or expired); sign in again.', details);
      case 'invalid_target':
        return new LogtoError('invalid_resource', `Logto refused the resource "${parameters.resource ?? ''}": it was not granted at sign-in. Sign in again.`, details);
      case 'access_denied':
        if (parameters.organizationId !== undefined) {
          return new LogtoError(
            'not_organization_member',
            `Logto refused a token for organization "${parameters.organizationId}": the user is not a member of it (or no longer is).`,
            details,
          );
        }
        return error;
      default:
        return error;
    }
  }
}

export function cachedToken(record: TokenRecord, key: string): StoredAccessToken | undefined {
  return key === userinfoTokenKey ? record.accessToken : record.resourceTokens?.[key];
}

/** The key of the opaque access token for userinfo (neither resource nor organization). */
const userinfoTokenKey = accessTokenKey(undefined, undefined);

export function withToken(record: TokenRecord, key: string, token: StoredAccessToken): TokenRecord {
  if (key === accessTokenKey(undefined, undefined)) return { ...record, accessToken: token };
  return { ...record, resourceTokens: { ...record.resourceTokens, [key]: token } };
}

/**
 * Whether Logto may have rotated the refresh token although no usable answer arrived. Only an
 * OAuth error from Logto, or a connection that was never made, says for sure that nothing
 * happened; a timeout, a dropped connection, a 5xx page (from Logto or a gateway in front of it)
 * or a garbled body may all follow a rotation.
 */
function answerMayBeLost(error: unknown): boolean {
  if (!(error instanceof LogtoError)) return true;
  switch (error.code) {
    case 'token_request_failed':
      return false;
    case 'provider_unreachable':
      return !/ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(error.message);
    default:
      return true;
  }
}

/** Whether Logto was down or unusable (5xx, timeout, unreachable, garbled), as opposed to answering. */
function isOutage(error: unknown): boolean {
  return error instanceof LogtoError && ['provider_error', 'provider_timeout', 'provider_unreachable', 'invalid_provider_response'].includes(error.code);
}

function signedOut(message: string): LogtoError {
  return new LogtoError('not_authenticated', message);
}

/** A lock outlives the longest refresh: every retry, then the ID token check. */
function lockTtl(config: ResolvedConfig): number {
  return (config.refreshRetryWindow + config.refreshTimeout + config.timeout) * 1000 + 5000;
}

const sentMarkKey = (signInId: string): string => `refresh-sent:${signInId}`;
