import type { HostRequest as Request } from '../host-types.js';
import type { ResolvedConfig } from '../configuration.js';
import type { IdTokenClaims } from '../logto/claims.js';
import type { LogtoConnection } from '../logto/connection.js';
import type { Refresher } from '../store/refresh.js';
import type { SessionReference } from '../store/session-reference.js';
import type { SignInRecords } from '../store/sign-in-records.js';
import type { LinkedSignIn, TokenRecord } from '../store/token-record.js';
import type { SessionIndex } from '../store/session-index.js';
import type { SessionStoreLike } from '../store/session-store-adapter.js';
import type { PendingSignIns } from './pending-sign-ins.js';
import type { LogtoSignInOptions } from './sign-in-options.js';
import type { Verified } from '../verify-callback.js';

/**
 * What a strategy's handlers work with: built once by the strategy and shared by every request.
 * Each handler takes a `Pick` of what it needs, so that its dependencies stay visible.
 */
export interface LogtoContext {
  readonly config: ResolvedConfig;
  readonly provider: LogtoConnection;
  readonly records: SignInRecords;
  readonly refresher: Refresher;
  readonly session: SessionReference;
  readonly pendingSignIns: PendingSignIns;
  /** Which sign-ins belong to a Logto session or user: back-channel logout ends them through it. */
  readonly sessionIndex: SessionIndex;
  /** The index a completed sign-in is added to; undefined while sign-ins are not indexed. */
  index(): SessionIndex | undefined;
  /**
   * Ends the other sign-ins that a session held (other tenants'), once that session was destroyed
   * by a back-channel logout: ending a session ends every sign-in in it.
   */
  endSessionSignIns(session: object, sessionStore: SessionStoreLike | undefined): Promise<void>;
  /** The other tenants' sign-ins that this request's session holds, to link to a new sign-in (none without tenants). */
  linkedSignIns(req: object): LinkedSignIn[];
  /**
   * Ends the other tenants' sign-ins linked to one that a back-channel logout ended, when no
   * session was found to read them from (cookie-session keeps none on the server).
   */
  endLinkedSignIns(linked: LinkedSignIn[], sessionStore: SessionStoreLike | undefined): Promise<void>;
  /** Runs the app's verify function (or builds the default user) for a verified sign-in. */
  userFor(req: Request, claims: IdTokenClaims, record: TokenRecord): Promise<Verified>;
  /** Keeps a started sign-in in its cookie and gives Logto's URL to send the browser to. */
  startSignIn(req: object, options: LogtoSignInOptions, silent: boolean): Promise<URL>;
}
