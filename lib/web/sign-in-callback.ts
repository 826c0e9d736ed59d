import type { Request } from 'express';
import type { IdTokenClaims } from '../logto/claims.js';
import type { ResolvedConfig } from '../configuration.js';
import { isCausedByRequest, LogtoError } from '../errors.js';
import type { SessionIndex } from './back-channel-logout.js';
import { keepThroughLogIn } from './keep-through-log-in.js';
import type { PendingSignIn, PendingSignIns } from './pending-sign-ins.js';
import type { LogtoConnection, TokenEndpointResponse } from '../logto/connection.js';
import type { SessionReference } from '../store/session-reference.js';
import { digest, newSignInId, type SignInRecords, type TokenRecord } from '../store/sign-in-records.js';
import type { TokenStore } from '../store/token-store.js';
import type { Verified } from './verify-callback.js';

/** What the callback ends in, for the strategy to hand to Passport. */
export type CallbackOutcome =
  | { kind: 'success'; user: object; info?: object | string | undefined }
  | { kind: 'refused'; info: object | string | undefined }
  | { kind: 'redirect'; url: string }
  | { kind: 'failure'; error: unknown };

/** What the store says about a callback's `state`, so that its code is exchanged once. */
type CallbackMark = { s: 'pending' } | { s: 'failed' } | { s: 'exchanged'; id: string; n: string; rt?: string };

export interface SignInCallbackContext {
  config: ResolvedConfig;
  provider: LogtoConnection;
  records: SignInRecords;
  session: SessionReference;
  pendingSignIns: PendingSignIns;
  /** The back-channel logout index, when sign-ins are indexed. */
  index(): SessionIndex | undefined;
  /** Runs the app's verify function (or builds the default user) for a verified sign-in. */
  userFor(req: Request, claims: IdTokenClaims, record: TokenRecord): Promise<Verified>;
}

/** Response parameters that must appear at most once in a callback. */
export const callbackParameters = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri'];
const maxCallbackParameterLength = 4096;
const markPollInterval = 50;
/** What Logto answers to `prompt=none` when it cannot sign the user in without showing a page. */
const interactionNeeded = new Set(['login_required', 'interaction_required', 'consent_required', 'account_selection_required']);

/** `code[]` or `state[x]`: an array or object in disguise, which the query parser would build. */
export function isBracketedCallbackParameter(name: string): boolean {
  const bracket = name.indexOf('[');
  return bracket > 0 && callbackParameters.includes(name.slice(0, bracket));
}

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

  constructor(private readonly context: SignInCallbackContext) {}

  async handle(req: Request, parameters: URLSearchParams): Promise<CallbackOutcome> {
    const progress = { used: false };
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
    return outcome;
  }

  private async complete(req: Request, parameters: URLSearchParams, progress: { used: boolean }): Promise<CallbackOutcome> {
    const { config, records } = this.context;
    checkParameters(parameters);
    const state = parameters.get('state');
    if (!state) throw new LogtoError('invalid_state', 'The sign-in callback has no state; start the sign-in again.');
    const pending = await this.pendingFor(req, state);
    // RFC 9207: Logto always sends `iss`; checking it first also refuses a mixed-up error response.
    if (parameters.get('iss') !== config.issuer) {
      throw new LogtoError('issuer_mismatch', 'The sign-in response does not come from the configured Logto issuer.');
    }
    if (pending === 'expired') {
      progress.used = true;
      throw new LogtoError('invalid_state', 'This sign-in took too long and expired; start the sign-in again.');
    }
    if (parameters.get('error')) {
      if (pending === 'unknown') throw unknownState();
      progress.used = true;
      try {
        // openid-client turns the error response into authorization_failed, after checking state and iss.
        await this.context.provider.exchangeCode(this.callbackUrl(parameters), { codeVerifier: pending.codeVerifier, state, nonce: pending.nonce });
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
    if (!parameters.get('code')) {
      throw new LogtoError('invalid_callback', 'The sign-in callback has neither a code nor an error; start the sign-in again.');
    }

    const store = records.storeFor(req);
    const markKey = `callback:${digest(state)}`;
    if (pending !== 'unknown') {
      progress.used = true;
      let exchange = this.exchanges.get(markKey);
      if (!exchange && (await records.claimMark(store, markKey, { s: 'pending' } satisfies CallbackMark, config.signInTimeout * 1000))) {
        exchange = this.exchange(store, markKey, parameters, pending);
        this.exchanges.set(markKey, exchange);
        void exchange.then(
          () => this.exchanges.delete(markKey),
          () => this.exchanges.delete(markKey),
        );
        const signInId = await exchange;
        return await this.logIn(req, store, signInId, pending.nonce, pending.returnTo, true);
      }
      if (exchange) await exchange.catch(() => undefined);
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

  /** Exchanges the code and writes the tokens to their record at once; resolves to the sign-in's id. */
  private async exchange(store: TokenStore, markKey: string, parameters: URLSearchParams, pending: PendingSignIn): Promise<string> {
    const { provider, records, config } = this.context;
    let response: TokenEndpointResponse;
    try {
      response = await provider.exchangeCode(this.callbackUrl(parameters), {
        codeVerifier: pending.codeVerifier,
        state: pending.state,
        nonce: pending.nonce,
      });
      if (!response.id_token) throw new LogtoError('invalid_id_token', 'Logto returned no ID token.');
    } catch (error) {
      await records.setMark(store, markKey, { s: 'failed' } satisfies CallbackMark, config.signInTimeout * 1000).catch(() => undefined);
      throw error;
    }
    const signInId = newSignInId();
    await records.create(store, signInId, recordOf(response.id_token, response));
    const mark: CallbackMark = { s: 'exchanged', id: signInId, n: pending.nonce, ...(pending.returnTo === undefined ? {} : { rt: pending.returnTo }) };
    await records.setMark(store, markKey, mark, config.signInTimeout * 1000);
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
    return this.logIn(req, store, mark.id, mark.n, mark.rt, false);
  }

  /** Verifies the sign-in's ID token from its record, asks the app for its user, and logs in. */
  private async logIn(
    req: Request,
    store: TokenStore,
    signInId: string,
    nonce: string,
    returnTo: string | undefined,
    first: boolean,
  ): Promise<CallbackOutcome> {
    const { records, provider, session } = this.context;
    const record = await records.read(store, signInId);
    if (!record) throw new LogtoError('invalid_state', 'This sign-in has already ended; start the sign-in again.');
    let claims: IdTokenClaims;
    try {
      claims = await provider.verifyIdToken(record.idToken, { nonce });
    } catch (error) {
      // A token that is wrong stays wrong; one that could not be checked (JWKS down) may be on a reload.
      if (error instanceof LogtoError && error.code === 'invalid_id_token') await records.end(store, signInId);
      throw error;
    }

    const alreadyIn = !first && session.read(req)?.signInId === signInId && (req as { isAuthenticated?: () => boolean }).isAuthenticated?.() === true;
    const verified: Verified =
      alreadyIn && req.user ? { user: req.user as object, info: undefined } : await this.context.userFor(req, claims, record);
    if (verified.user === false) {
      await records.end(store, signInId);
      return { kind: 'refused', info: verified.info };
    }
    const index = this.context.index();
    keepThroughLogIn(req, session, {
      signInId,
      returnTo,
      indexing: index ? { index, store, claims } : undefined,
    });
    return { kind: 'success', user: verified.user, info: verified.info };
  }

  private callbackUrl(parameters: URLSearchParams): URL {
    const url = new URL(this.context.config.callbackURL);
    url.search = parameters.toString();
    return url;
  }
}

function checkParameters(parameters: URLSearchParams): void {
  if ([...parameters.keys()].some(isBracketedCallbackParameter)) {
    throw new LogtoError('invalid_callback', 'The sign-in callback has a parameter that is not a plain string (such as code[]); start the sign-in again.');
  }
  for (const name of callbackParameters) {
    const values = parameters.getAll(name);
    if (values.length > 1 || (values[0]?.length ?? 0) > maxCallbackParameterLength) {
      throw new LogtoError('invalid_callback', `The sign-in callback has a duplicated or oversized "${name}" parameter; start the sign-in again.`);
    }
  }
}

function unknownState(): LogtoError {
  return new LogtoError('invalid_state', 'This sign-in is unknown to this browser or was already completed; start the sign-in again.');
}

/** The tokens of a code exchange, as their record keeps them. */
function recordOf(idToken: string, response: TokenEndpointResponse): TokenRecord {
  const expiresIn = response.expiresIn();
  return {
    idToken,
    ...(response.refresh_token === undefined ? {} : { refreshToken: response.refresh_token }),
    accessToken: {
      token: response.access_token,
      expiresAt: Math.floor(Date.now() / 1000) + (expiresIn ?? 0),
      ...(response.scope === undefined ? {} : { scope: response.scope }),
    },
  };
}
