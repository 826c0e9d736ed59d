/**
 * An in-process OpenID provider that behaves like Logto on the wire (see
 * /work/shared/logto-facts.md), built on oidc-provider v9 (which Logto forks).
 *
 * The parts: clients-and-users.ts (seed data and apps), storage.ts (the shared store),
 * logto-rules.ts (Logto's behaviour as oidc-provider configuration), faults.ts (the request record
 * and the fault switches), pages.ts and interactions.ts (the sign-in pages). This file starts it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import express from 'express';
import { importJWK, SignJWT } from 'jose';
import { createAppRegistry, seedUsers } from './clients-and-users.js';
import { createTraffic } from './faults.js';
import { generateSigningKey, loadOidcProvider, type ProviderInstance, type SigningKey } from './helpers.js';
import { serveInteractions } from './interactions.js';
import { acceptOrganizationRefresh, logtoConfiguration, withLogtoErrorFields, type RuleContext } from './logto-rules.js';
import { MemoryStore } from './storage.js';

export {
  API_RESOURCE,
  API_SCOPES,
  EXTRA_AUTHORIZATION_PARAMS,
  ORGANIZATION_ROLES_SCOPE,
  ORGANIZATION_SCOPES,
  ORGANIZATIONS,
  ORGANIZATIONS_RESOURCE,
  ORGANIZATIONS_SCOPE,
  organizationAudience,
} from './clients-and-users.js';

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

export interface StartProviderOptions {
  /** Default 0 = random; a fixed port lets tests stop and restart "Logto". */
  port?: number;
  /** Signing key type; ES384 is Logto's default, RS256 is what older tenants have. */
  alg?: 'ES384' | 'RS256';
  /** Seconds, for opaque userinfo tokens and resource/organization JWTs. Default 3600. */
  accessTokenTtl?: number;
  /** Seconds. Default 3600. */
  idTokenTtl?: number;
  /** Seconds. Default 14 days. */
  refreshTokenTtl?: number;
  /** A used refresh token stays valid this long (Logto: 3 s). Fractions allowed. Default 3. */
  reuseLeewaySeconds?: number;
  /** For the default app. */
  redirectUris?: string[];
  /** The default app's name, shown on the sign-in page ("to continue to …"). */
  appName?: string;
  postLogoutRedirectUris?: string[];
  backchannelLogoutUri?: string;
}

export interface TestApp {
  appId: string;
  appSecret: string;
}

export interface TestUser {
  sub: string;
  username: string;
  password: string;
  name: string | null;
  email: string | null;
  /** Global role names. */
  roles: string[];
  /** organization id -> organization role names */
  organizationRoles: Record<string, string[]>;
  /** Every claim Logto's userinfo returns for this user when all scopes are granted. */
  claims: Record<string, unknown>;
}

export interface RecordedRequest {
  method: string;
  /** Relative to the endpoint, without the query, e.g. '/oidc/token'. */
  path: string;
  /** Query and form body merged; a repeated parameter (e.g. `resource`) is joined with spaces. */
  params: Record<string, string>;
  /** Like params, but every value of a repeated parameter kept separately. */
  values: Record<string, string[]>;
  /** The raw Authorization header, if any (to tell client_secret_basic from _post). */
  authorization: string | undefined;
  /** When it arrived (ms since the epoch). */
  at: number;
}

export interface Fault {
  status: number;
  body: string;
  /** Default 'application/json' (so a malformed body looks like broken JSON). */
  contentType?: string;
}

export type TokenResponseTamper = (
  body: Record<string, unknown>,
  params: Record<string, string>,
) => Record<string, unknown> | Promise<Record<string, unknown>>;

export interface RegisterAppOptions {
  redirectUris: string[];
  /** Fixed credentials (`npm run provider` prints them once and keeps them); random when absent. */
  appId?: string;
  appSecret?: string;
  /** Shown on the sign-in page, as Logto shows the application's name. */
  name?: string;
  /**
   * Also accept every loopback redirect and post-logout redirect URI (http://127.0.0.1,
   * localhost or [::1], any port and path), for developers pointing their own app at it.
   */
  anyLoopbackRedirectUri?: boolean;
  postLogoutRedirectUris?: string[];
  backchannelLogoutUri?: string;
  /** Ask for `sid` in logout tokens and ID tokens. Default true when a back-channel URI is set. */
  backchannelLogoutSessionRequired?: boolean;
}

export interface TestProvider {
  /** 'http://127.0.0.1:<port>' */
  endpoint: string;
  /** `${endpoint}/oidc`, exactly. */
  issuer: string;
  /** The default confidential "Traditional web" app. */
  app: TestApp;
  users: { demo: TestUser; alice: TestUser };
  /** Every request that reached /oidc/* (faulted ones included). */
  requests: RecordedRequest[];
  countRequests(path: string, filter?: (r: RecordedRequest) => boolean): number;
  /** How many grants Logto has revoked: each ends a sign-in everywhere (reuse of a refresh token after the grace, or of a code). */
  revokedGrants(): number;
  resetRequests(): void;
  registerApp(opts: RegisterAppOptions): Promise<TestApp>;
  addRedirectUris(appId: string, redirectUris: string[], postLogoutRedirectUris?: string[]): Promise<void>;
  /** The new key becomes current (first in the JWKS); the old ones stay published. */
  rotateSigningKey(): Promise<void>;
  /** Signs with the current private key (to forge e.g. expired tokens with a valid signature). */
  sign(payload: Record<string, unknown>, header?: { alg?: string; kid?: string; typ?: string }): Promise<string>;
  /** Rewrites successful /oidc/token JSON responses. */
  setTokenResponseTamper(fn: TokenResponseTamper | undefined): void;
  /** Answers that path (e.g. '/oidc/token', '/oidc/jwks') with the given garbage until cleared. */
  setFault(path: string, fault: Fault | undefined): void;
  /** Stops listening (connections refused) but keeps all state. */
  pause(): Promise<void>;
  /** Listens again on the same port. */
  resume(): Promise<void>;
  /** Further refreshes answer invalid_grant (and userinfo invalid_token). */
  suspendUser(sub: string): void;
  /**
   * A one-time token for a seeded user's email, as Logto's Management API issues one
   * (`POST /api/one-time-tokens`): a sign-in that sends it as `one_time_token`, with that email as
   * `login_hint`, signs the user in without a password, once. Default lifetime 600 seconds.
   */
  issueOneTimeToken(email: string, options?: { expiresIn?: number }): string;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------

export async function startProvider(options: StartProviderOptions = {}): Promise<TestProvider> {
  const oidc = await loadOidcProvider();
  const { default: internals } = await import('oidc-provider/lib/helpers/weak_cache.js');
  const { errors } = oidc;

  const alg = options.alg ?? 'ES384';
  const store = new MemoryStore((options.reuseLeewaySeconds ?? 3) * 1000);
  const users = seedUsers();
  const rules: RuleContext = {
    errors,
    store,
    alg,
    accessTokenTtl: options.accessTokenTtl ?? 3600,
    idTokenTtl: options.idTokenTtl ?? 3600,
    refreshTokenTtl: options.refreshTokenTtl ?? 14 * 24 * 3600,
    usersBySub: new Map(Object.values(users).map((u) => [u.sub, u])),
    suspended: new Set<string>(),
  };
  const { usersBySub, suspended } = rules;
  /** One-time tokens by value: whom each was issued for, until when, and whether it was used. */
  const oneTimeTokens = new Map<string, { email: string; expiresAt: number; used: boolean }>();
  const signingKeys: SigningKey[] = [await generateSigningKey(alg)];

  // --- HTTP server first: the issuer needs the real port --------------------
  const app = express();
  app.disable('x-powered-by');
  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}`;
  const issuer = `${endpoint}/oidc`;
  const traffic = createTraffic(endpoint);
  const apps = createAppRegistry(store, alg);

  // --- Provider instances: a key rotation makes a new one over the same store -------
  const configuration = logtoConfiguration(rules);

  function createOidcProvider(): ProviderInstance {
    const provider = new oidc.Provider(issuer, {
      ...configuration,
      jwks: { keys: signingKeys.map((k) => k.privateJwk) },
    });
    // Koa would print unexpected errors; the tests assert on responses instead.
    provider.silent = true;
    apps.allowLoopbackRedirects(provider);
    acceptOrganizationRefresh(rules, provider, internals);

    provider.use(async (ctx, next) => {
      await next();
      const record = traffic.recordBody(ctx.req, ctx.oidc?.body);
      const responseBody: unknown = ctx.body;
      if (!responseBody || typeof responseBody !== 'object' || Buffer.isBuffer(responseBody)) return;
      const json = responseBody as Record<string, unknown>;
      const tamper = traffic.tamper();
      if (ctx.status >= 400 && typeof json.error === 'string') {
        ctx.body = withLogtoErrorFields(json, json.error);
      } else if (tamper && ctx.status === 200 && ctx.oidc?.route === 'token') {
        ctx.body = await tamper(json, record?.params ?? {});
      }
    });
    return provider;
  }

  let provider = createOidcProvider();
  let callback = provider.callback();

  const defaultApp = await apps.registerApp({
    redirectUris: options.redirectUris ?? ['http://127.0.0.1:3000/callback'],
    postLogoutRedirectUris: options.postLogoutRedirectUris ?? ['http://127.0.0.1:3000/'],
    ...(options.backchannelLogoutUri ? { backchannelLogoutUri: options.backchannelLogoutUri } : {}),
    ...(options.appName ? { name: options.appName } : {}),
  });

  // --- Routes ------------------------------------------------------------------------
  app.use('/oidc', traffic.recordAndFault);
  // Looked up per request so that a key rotation (new provider instance) takes effect.
  app.use('/oidc', (req, res) => {
    void callback(req, res);
  });
  serveInteractions(app, {
    errors,
    provider: () => provider,
    clientAdapter: apps.clientAdapter,
    usersBySub,
    suspended,
    oneTimeTokens,
  });

  // --- Lifecycle -------------------------------------------------------------------
  let listening = true;

  async function stopListening(): Promise<void> {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive sockets would otherwise keep the "stopped" server answering.
    server.closeAllConnections();
    await closed;
    // Let clients in this process see the FINs, so their next request is refused
    // (ECONNREFUSED) instead of failing on a dead pooled socket.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const testProvider: TestProvider = {
    endpoint,
    issuer,
    app: defaultApp,
    users,
    requests: traffic.requests,
    countRequests(path, filter) {
      return traffic.requests.filter((r) => r.path === path && (!filter || filter(r))).length;
    },
    resetRequests() {
      traffic.requests.length = 0;
    },
    revokedGrants() {
      return store.revokedGrants;
    },
    registerApp: apps.registerApp,
    addRedirectUris: apps.addRedirectUris,
    async rotateSigningKey() {
      signingKeys.unshift(await generateSigningKey(alg));
      // oidc-provider's keystore is fixed per instance; all state lives in the shared store.
      provider = createOidcProvider();
      callback = provider.callback();
    },
    async sign(payload, header = {}) {
      const current = signingKeys[0];
      if (!current) throw new Error('no signing key');
      const key = await importJWK(current.privateJwk, current.alg);
      return new SignJWT(payload)
        .setProtectedHeader({ alg: header.alg ?? current.alg, kid: header.kid ?? current.kid, typ: header.typ ?? 'JWT' })
        .sign(key);
    },
    setTokenResponseTamper: traffic.setTokenResponseTamper,
    setFault: traffic.setFault,
    pause: stopListening,
    async resume() {
      if (listening) return;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      listening = true;
    },
    suspendUser(sub) {
      suspended.add(sub);
    },
    issueOneTimeToken(email, { expiresIn = 600 } = {}) {
      const normalized = email.toLowerCase();
      if (![...usersBySub.values()].some((u) => u.email?.toLowerCase() === normalized)) {
        throw new Error(`the test provider has no user with the email ${email}`);
      }
      const token = randomBytes(24).toString('base64url');
      oneTimeTokens.set(token, { email: normalized, expiresAt: Date.now() + expiresIn * 1000, used: false });
      return token;
    },
    close: stopListening,
  };
  return testProvider;
}
