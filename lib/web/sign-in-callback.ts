import type { HostRequest as Request } from '../host-types.js';
import type { IdTokenClaims } from '../logto/claims.js';
import { isCausedByRequest, LogtoError } from '../errors.js';
import { checkIssuer, readCallback } from './callback-parameters.js';
import type { LogtoContext } from './context.js';
import { keepThroughLogIn } from './keep-through-log-in.js';
import type { PendingSignIn } from './pending-sign-ins.js';
import { isSilentState } from './silent-sign-in.js';
import type { TokenEndpointResponse } from '../logto/connection.js';
import { digest, newSignInId, signInRecordOf, type LinkedSignIn, type TokenRecord } from '../store/token-record.js';
import type { TokenStore } from '../store/token-store.js';
import type { Verified } from '../verify-callback.js';
import type { SignInHosts } from './sign-in-host.js';
import { debug } from '../debug.js';

/** What the callback ends in, for the strategy to hand to Passport. */
export type CallbackOutcome =
  | { kind: 'success'; user: object; info?: object | string | undefined }
  | { kind: 'refused'; info: object | string | undefined }
  | { kind: 'redirect'; url: string }
  | { kind: 'failure'; error: unknown };

/** What the store says about a callback's `state`, so that its code is exchanged once. */
type CallbackMark = { s: 'pending' } | { s: 'failed' } | { s: 'exchanged'; id: string; n: string; rt?: string };

/** A sign-in whose code was exchanged: what logging in from its record needs. */
interface ExchangedSignIn {
  signInId: string;
  nonce: string;
  returnTo: string | undefined;
}

/** Whether the callback acted on Logto's answer, which ends the started sign-in. */
interface Progress {
  used: boolean;
  /** The started sign-in's return path, once its cookie was read. */
  returnTo?: string | undefined;
}

const markPollInterval = 50;
/** What Logto answers to `prompt=none` when it cannot sign the user in without showing a page. */
const interactionNeeded = new Set(['login_required', 'interaction_required', 'consent_required', 'account_selection_required']);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The callback leg. Logto revokes the whole grant when an authorization code is exchanged twice,
 * so each `state` is claimed in the token store before its code is sent: a double click, a reload
 * or a browser retry never makes a second exchange. A second arrival from the same browser (it
 * still holds the sign-in's cookie, or its session already refers to the sign-in) ends like the
 * first: signed in, sent on to the return path.
 */
export class SignInCallback {
  private readonly exchanges = new Map<string, Promise<string>>();

  constructor(
    private readonly context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'session' | 'pendingSignIns' | 'index' | 'userFor' | 'linkedSignIns'>,
    private readonly hosts?: SignInHosts,
  ) {}

  async handle(req: Request, parameters: URLSearchParams): Promise<CallbackOutcome> {
    const progress: Progress = { used: false };
    let outcome: CallbackOutcome;
    try {
      outcome = await this.complete(req, parameters, progress);
    } catch (error) {
      outcome = { kind: 'failure', error };
    }
    // Once Logto's answer was acted on, the started sign-in is over, except after a failure of
    // Logto or of the store, when a reload may still finish it. A callback refused before that
    // (a forged or mangled one) leaves the real sign-in alone.
    const retryable = outcome.kind === 'failure' && !(outcome.error instanceof LogtoError && isCausedByRequest(outcome.error));
    const state = parameters.get('state');
    if (progress.used && !retryable && state) {
      try {
        this.context.pendingSignIns.clear(req, state);
      } catch {
        // No response to set a cookie on: nothing to clear.
      }
    }
    debug('callback: %s', describeOutcome(outcome));
    // A silent attempt never ends on the failure page (which may try silently again): back to the
    // page, signed out, also when its cookie did not come back (a client that keeps no cookies).
    if (outcome.kind === 'failure' && !retryable && state !== null && isSilentState(state)) {
      return { kind: 'redirect', url: progress.returnTo ?? '/' };
    }
    return outcome;
  }

  /**
   * The steps of a callback, in an order that matters: the started sign-in is taken before the
   * issuer is checked, Logto's error answer is read before a code is required, and the `state` is
   * claimed before its code is sent.
   */
  private async complete(req: Request, parameters: URLSearchParams, progress: Progress): Promise<CallbackOutcome> {
    const state = readCallback(parameters);
    const pending = await this.pendingFor(req, state);
    if (typeof pending === 'object') progress.returnTo = pending.returnTo;
    checkIssuer(parameters, this.context.config.issuer);
    // Without its cookie, a sign-in that started on another host can never finish here: say why.
    const otherHost = pending === 'unknown' ? this.hosts?.mismatch(req, state) : undefined;
    if (otherHost) throw otherHost;
    if (pending === 'expired') {
      progress.used = true;
      throw new LogtoError('invalid_state', 'This sign-in took too long and expired; start the sign-in again.');
    }
    if (parameters.get('error')) {
      const answered = await this.answerLogtoError(parameters, pending, progress);
      if (answered) return answered;
    }
    if (!parameters.get('code')) {
      throw new LogtoError('invalid_callback', 'The sign-in callback has neither a code nor an error; start the sign-in again.');
    }
    const store = this.context.records.storeFor(req);
    const markKey = `callback:${digest(state)}`;
    if (pending !== 'unknown') {
      progress.used = true;
      const signInId = await this.claimAndExchange(store, markKey, parameters, pending, this.context.linkedSignIns(req));
      if (signInId !== undefined) {
        return await this.logIn(req, store, { signInId, nonce: pending.nonce, returnTo: pending.returnTo }, true);
      }
    }
    return this.replay(req, store, markKey, pending !== 'unknown');
  }

  /** The sign-in for `state` from its cookie, or from a session written by 0.1.0. */
  private async pendingFor(req: Request, state: string): Promise<PendingSignIn | 'unknown' | 'expired'> {
    const pending = await this.context.pendingSignIns.take(req, state);
    if (pending !== 'unknown') return pending;
    const legacy = this.context.session.legacyPending(req, state);
    if (!legacy) return 'unknown';
    if (Date.now() - legacy.createdAt > this.context.config.signInTimeout * 1000) return 'expired';
    return { state, codeVerifier: legacy.codeVerifier, nonce: legacy.nonce, ...(legacy.returnTo === undefined ? {} : { returnTo: legacy.returnTo }) };
  }

  /**
   * Logto answered with an error (the user cancelled, or `prompt=none` could not sign in).
   * openid-client turns it into authorization_failed, after checking state and iss; should it
   * not throw, the callback goes on as one with a code.
   */
  private async answerLogtoError(
    parameters: URLSearchParams,
    pending: PendingSignIn | 'unknown',
    progress: Progress,
  ): Promise<CallbackOutcome | undefined> {
    if (pending === 'unknown') throw unknownState();
    progress.used = true;
    try {
      await this.exchangeCode(parameters, pending);
      return undefined;
    } catch (error) {
      if (!(error instanceof LogtoError) || error.code !== 'authorization_failed') throw error;
      // A silent attempt that Logto could not complete without the user: back to the page, signed out.
      if (pending.silent) return { kind: 'redirect', url: pending.returnTo ?? '/' };
      if (error.oauthError !== undefined && interactionNeeded.has(error.oauthError)) {
        throw new LogtoError('sign_in_required', `${error.message} Logto needs the user to sign in; start a sign-in without prompt=none.`, {
          cause: error,
          oauthError: error.oauthError,
        });
      }
      throw error;
    }
  }

  /**
   * Claims the `state` in the token store, then exchanges its code; resolves to the sign-in's id.
   * Resolves to undefined when another arrival holds the claim, once this process's exchange of
   * it (if it runs here) has ended.
   */
  private async claimAndExchange(store: TokenStore, markKey: string, parameters: URLSearchParams, pending: PendingSignIn, linked: LinkedSignIn[]): Promise<string | undefined> {
    let exchange = this.exchanges.get(markKey);
    if (!exchange && (await this.context.records.claimMark(store, markKey, { s: 'pending' } satisfies CallbackMark, this.markTtl()))) {
      exchange = this.exchange(store, markKey, parameters, pending, linked);
      this.exchanges.set(markKey, exchange);
      void exchange.then(
        () => this.exchanges.delete(markKey),
        () => this.exchanges.delete(markKey),
      );
      return await exchange;
    }
    if (exchange) await exchange.catch(() => undefined);
    return undefined;
  }

  /**
   * Exchanges the code and writes the tokens to their record at once, before anything else is
   * checked (the code cannot be exchanged again); resolves to the sign-in's id.
   */
  private async exchange(store: TokenStore, markKey: string, parameters: URLSearchParams, pending: PendingSignIn, linked: LinkedSignIn[]): Promise<string> {
    const { records } = this.context;
    let response: TokenEndpointResponse;
    try {
      response = await this.exchangeCode(parameters, pending);
      if (!response.id_token) throw new LogtoError('invalid_id_token', 'Logto returned no ID token.');
      if (!response.refresh_token) this.noRefreshToken();
    } catch (error) {
      await records.setMark(store, markKey, { s: 'failed' } satisfies CallbackMark, this.markTtl()).catch(() => undefined);
      throw error;
    }
    const signInId = newSignInId();
    await records.create(store, signInId, { ...signInRecordOf(response.id_token, response), ...(linked.length > 0 ? { linked } : {}) });
    const mark: CallbackMark = { s: 'exchanged', id: signInId, n: pending.nonce, ...(pending.returnTo === undefined ? {} : { rt: pending.returnTo }) };
    await records.setMark(store, markKey, mark, this.markTtl());
    return signInId;
  }

  /**
   * A second arrival of a `state` whose code is (being) exchanged: it waits for the first, then
   * ends signed in when it comes from the same browser, and with invalid_state otherwise.
   */
  private async replay(req: Request, store: TokenStore, markKey: string, holdsCookie: boolean): Promise<CallbackOutcome> {
    const { records, config, session } = this.context;
    const deadline = Date.now() + (config.timeout + config.refreshRetryWindow) * 1000 + 2000;
    let mark = await records.getMark<CallbackMark>(store, markKey);
    while (mark?.s === 'pending' && Date.now() < deadline) {
      await sleep(markPollInterval);
      mark = await records.getMark<CallbackMark>(store, markKey);
    }
    if (mark?.s !== 'exchanged') throw unknownState();
    const sameBrowser = holdsCookie || session.read(req)?.signInId === mark.id;
    if (!sameBrowser) throw unknownState();
    return this.logIn(req, store, { signInId: mark.id, nonce: mark.n, returnTo: mark.rt }, false);
  }

  /** Verifies the sign-in's ID token from its record, asks the app for its user, and logs in. */
  private async logIn(req: Request, store: TokenStore, signIn: ExchangedSignIn, first: boolean): Promise<CallbackOutcome> {
    const { records, session } = this.context;
    const { signInId, returnTo } = signIn;
    const record = await records.read(store, signInId);
    if (!record) throw new LogtoError('invalid_state', 'This sign-in has already ended; start the sign-in again.');
    const claims = await this.verifiedClaims(store, signIn, record.idToken);
    const verified = await this.userOf(req, signInId, claims, record, first);
    if (verified.user === false) {
      await records.end(store, signInId);
      return { kind: 'refused', info: verified.info };
    }
    const index = this.context.index();
    // Signing in again in the same session: the earlier sign-in ends once the new one is in.
    // Its refresh token is not revoked: Logto may have issued both from one grant, which
    // revoking would end too.
    const replaced = session.read(req);
    keepThroughLogIn(req, session, {
      signInId,
      returnTo,
      indexing: index ? { index, store, claims } : undefined,
      ...(replaced && replaced.signInId !== signInId
        ? { endReplaced: () => records.end(store, replaced.signInId, { fromSession: replaced.legacy !== undefined }) }
        : {}),
    });
    return { kind: 'success', user: verified.user, info: verified.info };
  }

  /** The ID token's claims. A token that is wrong stays wrong and ends the sign-in; one that could not be checked (JWKS down) may pass on a reload. */
  private async verifiedClaims(store: TokenStore, signIn: ExchangedSignIn, idToken: string): Promise<IdTokenClaims> {
    try {
      return await this.context.provider.verifyIdToken(idToken, { nonce: signIn.nonce });
    } catch (error) {
      if (error instanceof LogtoError && error.code === 'invalid_id_token') await this.context.records.end(store, signIn.signInId);
      throw error;
    }
  }

  /** The app's user; a replay into the session that this sign-in already logged in keeps its user. */
  private async userOf(req: Request, signInId: string, claims: IdTokenClaims, record: TokenRecord, first: boolean): Promise<Verified> {
    const alreadyIn = !first && this.context.session.read(req)?.signInId === signInId && (req as { isAuthenticated?: () => boolean }).isAuthenticated?.() === true;
    return alreadyIn && req.user ? { user: req.user as object, info: undefined } : await this.context.userFor(req, claims, record);
  }

  private exchangeCode(parameters: URLSearchParams, pending: PendingSignIn): Promise<TokenEndpointResponse> {
    const url = new URL(this.context.config.callbackURL);
    url.search = parameters.toString();
    return this.context.provider.exchangeCode(url, { codeVerifier: pending.codeVerifier, state: pending.state, nonce: pending.nonce });
  }

  /** Logto drops offline_access unless `prompt` has consent (the sign-in start warns about that): the sign-in works, but no token can be asked for later. */
  private noRefreshToken(): void {
    const asked = this.context.config.scopes.includes('offline_access');
    debug('callback: Logto issued no refresh token (%s), so no access token can be asked for later in this sign-in', asked ? 'offline_access needs prompt=consent' : 'offline_access is not among the scopes');
  }

  /** How long a `state`'s mark is kept: as long as the sign-in may take. */
  private markTtl(): number {
    return this.context.config.signInTimeout * 1000;
  }
}

/** Why the callback ended as it did, for the debug log: codes and messages only, never a token. */
function describeOutcome(outcome: CallbackOutcome): string {
  switch (outcome.kind) {
    case 'success':
      return 'signed in';
    case 'refused':
      return 'the verify function refused the user (Passport fail)';
    case 'redirect':
      return `Logto could not sign in silently; back to ${outcome.url}, signed out`;
    case 'failure': {
      const { error } = outcome;
      if (!(error instanceof LogtoError)) return `the app's verify function failed (${error instanceof Error ? error.name : typeof error})`;
      return `failed with ${error.code} (${isCausedByRequest(error) ? 'Passport fail' : 'Passport error'}): ${error.message}`;
    }
  }
}

function unknownState(): LogtoError {
  return new LogtoError('invalid_state', 'This sign-in is unknown to this browser or was already completed; start the sign-in again.');
}
