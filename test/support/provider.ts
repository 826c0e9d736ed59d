/**
 * An in-process OpenID provider that behaves like Logto on the wire (see
 * /work/shared/logto-facts.md), built on oidc-provider v9 (which Logto forks).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import type {
  Adapter,
  AdapterPayload,
  Configuration,
  KoaContextWithOIDC,
  ResourceServer,
  UnknownObject,
} from 'oidc-provider';
import type Provider from 'oidc-provider';

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

// Logto's reserved names.
export const ORGANIZATIONS_RESOURCE = 'urn:logto:resource:organizations';
export const ORGANIZATIONS_SCOPE = 'urn:logto:scope:organizations';
export const ORGANIZATION_ROLES_SCOPE = 'urn:logto:scope:organization_roles';
export const organizationAudience = (organizationId: string): string => `urn:logto:organization:${organizationId}`;

/** The one API resource the provider knows. */
export const API_RESOURCE = 'https://api.example.com';
export const API_SCOPES = ['read:items', 'write:items'] as const;
/** Organization permissions (scopes of organization tokens). */
export const ORGANIZATION_SCOPES = ['read:members', 'write:members', 'invite:members'] as const;

export const ORGANIZATIONS = [
  { id: 'org-acme', name: 'Acme', description: 'Acme Corporation, the organization demo belongs to' },
  { id: 'org-globex', name: 'Globex', description: 'Globex Corporation, nobody seeded belongs to it' },
] as const;

export const EXTRA_AUTHORIZATION_PARAMS = [
  'first_screen',
  'identifier',
  'direct_sign_in',
  'organization_id',
  'one_time_token',
  'interaction_mode',
] as const;

// ---------------------------------------------------------------------------
// Seed data: roles, users
// ---------------------------------------------------------------------------

interface RoleDefinition {
  /** Organization permissions (organization roles only). */
  organizationScopes: string[];
  /** API resource indicator -> scopes. */
  apiScopes: Record<string, string[]>;
}

const GLOBAL_ROLES: Record<string, RoleDefinition> = {
  admin: { organizationScopes: [], apiScopes: { [API_RESOURCE]: ['read:items', 'write:items'] } },
};

const ORGANIZATION_ROLES: Record<string, RoleDefinition> = {
  member: { organizationScopes: ['read:members'], apiScopes: { [API_RESOURCE]: ['read:items'] } },
  admin: {
    organizationScopes: [...ORGANIZATION_SCOPES],
    apiScopes: { [API_RESOURCE]: ['read:items', 'write:items'] },
  },
};

// Claims only /oidc/me returns, never the ID token.
const USERINFO_ONLY_CLAIMS = ['custom_data', 'identities', 'sso_identities', 'organization_data'];

const CLAIMS_BY_SCOPE: Record<string, string[]> = {
  openid: ['sub'],
  profile: ['name', 'picture', 'username', 'updated_at', 'created_at'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  address: ['address'],
  custom_data: ['custom_data'],
  identities: ['identities', 'sso_identities'],
  roles: ['roles'],
  [ORGANIZATIONS_SCOPE]: ['organizations', 'organization_data'],
  [ORGANIZATION_ROLES_SCOPE]: ['organization_roles'],
};

interface UserSeed {
  sub: string;
  username: string;
  password: string;
  name: string | null;
  picture: string | null;
  email: string | null;
  phone: string | null;
  roles: string[];
  organizationRoles: Record<string, string[]>;
  customData: Record<string, unknown>;
  createdAt: number;
}

function buildUser(seed: UserSeed): TestUser {
  const organizationIds = Object.keys(seed.organizationRoles);
  const claims: Record<string, unknown> = {
    sub: seed.sub,
    name: seed.name,
    picture: seed.picture,
    username: seed.username,
    created_at: seed.createdAt,
    updated_at: seed.createdAt + 60_000,
    email: seed.email,
    email_verified: seed.email !== null,
    phone_number: seed.phone,
    phone_number_verified: seed.phone !== null,
    address: {
      formatted: '1 Test Street, Testville',
      street_address: '1 Test Street',
      locality: 'Testville',
      country: 'XX',
    },
    custom_data: seed.customData,
    identities: {},
    sso_identities: [],
    roles: seed.roles,
    organizations: organizationIds,
    organization_data: ORGANIZATIONS.filter((o) => organizationIds.includes(o.id)).map((o) => ({
      id: o.id,
      name: o.name,
      description: o.description,
    })),
    organization_roles: Object.entries(seed.organizationRoles).flatMap(([id, roles]) => roles.map((r) => `${id}:${r}`)),
  };
  return {
    sub: seed.sub,
    username: seed.username,
    password: seed.password,
    name: seed.name,
    email: seed.email,
    roles: seed.roles,
    organizationRoles: seed.organizationRoles,
    claims,
  };
}

function seedUsers(): { demo: TestUser; alice: TestUser } {
  // Fixed timestamps keep snapshots stable; Logto uses milliseconds.
  return {
    demo: buildUser({
      sub: 'demo00user01',
      username: 'demo',
      password: 'demo-password',
      name: 'Demo User',
      picture: null,
      email: 'demo@example.com',
      phone: '+15555550100',
      roles: ['admin'],
      organizationRoles: { 'org-acme': ['member'] },
      customData: { plan: 'pro' },
      createdAt: 1_700_000_000_000,
    }),
    alice: buildUser({
      sub: 'alice0user02',
      username: 'alice',
      password: 'alice-password',
      name: 'Alice Liddell',
      picture: 'https://example.com/alice.png',
      email: 'alice@example.com',
      phone: null,
      roles: [],
      organizationRoles: {},
      customData: {},
      createdAt: 1_700_000_100_000,
    }),
  };
}

function scopesFromRoles(
  roleNames: string[],
  definitions: Record<string, RoleDefinition>,
  pick: (role: RoleDefinition) => string[],
): string[] {
  const scopes = new Set<string>();
  for (const name of roleNames) {
    const role = definitions[name];
    if (role) pick(role).forEach((s) => scopes.add(s));
  }
  return [...scopes];
}

// ---------------------------------------------------------------------------
// Storage: one in-memory store shared by every provider instance (a key
// rotation rebuilds the provider, and state must survive that)
// ---------------------------------------------------------------------------

interface StoredRecord {
  payload: AdapterPayload;
  expiresAt: number | undefined;
  /** ms timestamp of the first consumption; drives the refresh-token reuse leeway. */
  consumedAt: number | undefined;
}

class MemoryStore {
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

class StoreAdapter implements Adapter {
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

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

type OidcModule = typeof import('oidc-provider');
type ProviderInstance = InstanceType<typeof Provider>;

let oidcModulePromise: Promise<OidcModule> | undefined;

/** oidc-provider warns on import under Node 20 ("Unsupported runtime"); tests must stay quiet. */
function loadOidcProvider(): Promise<OidcModule> {
  oidcModulePromise ??= (async () => {
    const { warn } = console;
    console.warn = () => {};
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = warn;
    }
  })();
  return oidcModulePromise;
}

interface SigningKey {
  kid: string;
  alg: 'ES384' | 'RS256';
  privateJwk: JWK;
}

async function generateSigningKey(alg: 'ES384' | 'RS256'): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const kid = randomBytes(8).toString('hex');
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateJwk };
}

function randomId(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(length), (b) => alphabet[b % alphabet.length]).join('');
}

/** An http(s) URL on a loopback host, any port and path: what an app on this machine sends. */
function isLoopbackUri(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:')
    && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
    && url.username === '' && url.password === '' && url.hash === '';
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Flattens a query/form object into the RecordedRequest shapes. */
function flattenParams(source: Iterable<[string, unknown]>): { params: Record<string, string>; values: Record<string, string[]> } {
  const values: Record<string, string[]> = {};
  for (const [key, value] of source) {
    const list = Array.isArray(value) ? value.map(String) : [String(value)];
    (values[key] ??= []).push(...list);
  }
  const params = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.join(' ')]));
  return { params, values };
}

function stringParam(ctx: KoaContextWithOIDC, name: string): string | undefined {
  const value = ctx.oidc?.params?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

async function readRawBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f5f5f7; margin: 0; }
  main { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
  h1 { font-size: 1.4rem; margin-top: 0; }
  label { display: block; margin: .75rem 0 .25rem; font-size: .9rem; }
  input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }
  button { margin-top: 1rem; width: 100%; padding: .6rem; font-size: 1rem; cursor: pointer; }
  #sign-in, #create-account, .button { background: #5d34f2; color: #fff; border: 0; border-radius: 4px; }
  a.button { display: block; text-align: center; padding: .6rem; text-decoration: none; }
  .switch { font-size: .9rem; margin-top: 1rem; }
  .detail { color: #6b6b76; font-size: .8rem; }
  #cancel { background: none; border: 0; color: #555; text-decoration: underline; }
  .error { color: #b00020; }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

// ---------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------

export async function startProvider(options: StartProviderOptions = {}): Promise<TestProvider> {
  const oidc = await loadOidcProvider();
  const { default: internals } = await import('oidc-provider/lib/helpers/weak_cache.js');
  const { errors } = oidc;

  const alg = options.alg ?? 'ES384';
  const accessTokenTtl = options.accessTokenTtl ?? 3600;
  const idTokenTtl = options.idTokenTtl ?? 3600;
  const refreshTokenTtl = options.refreshTokenTtl ?? 14 * 24 * 3600;
  const store = new MemoryStore((options.reuseLeewaySeconds ?? 3) * 1000);
  const users = seedUsers();
  const usersBySub = new Map(Object.values(users).map((u) => [u.sub, u]));
  const suspended = new Set<string>();
  /** One-time tokens by value: whom each was issued for, until when, and whether it was used. */
  const oneTimeTokens = new Map<string, { email: string; expiresAt: number; used: boolean }>();
  const requests: RecordedRequest[] = [];
  const requestRecords = new WeakMap<IncomingMessage, RecordedRequest>();
  const faults = new Map<string, Fault>();
  let tamper: TokenResponseTamper | undefined;
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

  // --- Resource servers --------------------------------------------------------
  function resourceServerInfo(ctx: KoaContextWithOIDC, indicator: string): ResourceServer {
    const jwtFormat = {
      accessTokenFormat: 'jwt' as const,
      accessTokenTTL: accessTokenTtl,
      jwt: { sign: { alg } },
    };
    // At sign-in every defined scope may be granted; at the token endpoint the
    // user's roles narrow them, like Logto's RBAC.
    const atTokenEndpoint = ctx.oidc.route === 'token';
    const accountId = ctx.oidc.entities.Account?.accountId;
    const user = accountId === undefined ? undefined : usersBySub.get(accountId);
    const organizationId = atTokenEndpoint ? stringParam(ctx, 'organization_id') : undefined;

    if (indicator === API_RESOURCE) {
      let scopes: string[] = [...API_SCOPES];
      if (atTokenEndpoint && user) {
        scopes = organizationId
          ? scopesFromRoles(user.organizationRoles[organizationId] ?? [], ORGANIZATION_ROLES, (r) => r.apiScopes[indicator] ?? [])
          : scopesFromRoles(user.roles, GLOBAL_ROLES, (r) => r.apiScopes[indicator] ?? []);
      }
      return { scope: scopes.join(' '), ...jwtFormat };
    }
    if (indicator === ORGANIZATIONS_RESOURCE) {
      if (atTokenEndpoint && organizationId) {
        const scopes = user
          ? scopesFromRoles(user.organizationRoles[organizationId] ?? [], ORGANIZATION_ROLES, (r) => r.organizationScopes)
          : [];
        return { scope: scopes.join(' '), audience: organizationAudience(organizationId), ...jwtFormat };
      }
      return { scope: ORGANIZATION_SCOPES.join(' '), ...jwtFormat };
    }
    throw new errors.InvalidTarget();
  }

  // --- Configuration -------------------------------------------------------------
  const configuration: Configuration = {
    adapter: (name: string) => new StoreAdapter(name, store),
    clients: [],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    cookies: { keys: ['passport-logto-test-provider-cookie-key'] },
    routes: {
      authorization: '/auth',
      token: '/token',
      userinfo: '/me',
      jwks: '/jwks',
      end_session: '/session/end',
      revocation: '/token/revocation',
      introspection: '/token/introspection',
    },
    scopes: ['openid', 'offline_access', ...Object.keys(CLAIMS_BY_SCOPE).filter((s) => s !== 'openid')],
    claims: CLAIMS_BY_SCOPE,
    // Logto puts scope claims in code-flow ID tokens too.
    conformIdTokenClaims: false,
    extraParams: [...EXTRA_AUTHORIZATION_PARAMS],
    responseTypes: ['code'],
    enabledJWA: { idTokenSigningAlgValues: ['ES384', 'RS256', 'PS256', 'ES256', 'ES512'] },
    // Logto requires PKCE unless the client authenticates with client_secret_basic.
    pkce: { required: (_ctx, client) => client.clientAuthMethod !== 'client_secret_basic' },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: idTokenTtl,
      RefreshToken: refreshTokenTtl,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 180 * 24 * 3600,
      ClientCredentials: 600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // Logto's logout page confirms by itself: the form ends the whole
        // session (logout=yes) and submits itself.
        logoutSource: async (ctx, form) => {
          const selfSubmitting = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/><noscript><button type="submit" id="sign-out">Sign out</button></noscript></form>');
          ctx.body = page('Signing out', `<h1>Signing out…</h1>\n${selfSubmitting}\n<script>document.forms[0].submit()</script>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out', '<h1 id="signed-out">You have been signed out</h1>');
        },
      },
      resourceIndicators: {
        enabled: true,
        // No `resource` at the token endpoint means the opaque userinfo token.
        defaultResource: async (_ctx, _client, oneOf) => (oneOf && oneOf.length === 1 ? oneOf[0] : oneOf),
        useGrantedResource: async () => false,
        getResourceServerInfo: async (ctx, indicator) => resourceServerInfo(ctx, indicator),
      },
    },
    extraTokenClaims: async (ctx) => {
      const organizationId = ctx.oidc.route === 'token' ? stringParam(ctx, 'organization_id') : undefined;
      const resource = stringParam(ctx, 'resource');
      // Organization-scoped API tokens name the organization; organization tokens carry it in aud.
      if (organizationId && resource && resource !== ORGANIZATIONS_RESOURCE) return { organization_id: organizationId };
      return undefined;
    },
    findAccount: async (_ctx, sub) => {
      const user = usersBySub.get(sub);
      if (!user || suspended.has(sub)) return undefined;
      return {
        accountId: sub,
        claims: async (use: string) => {
          const claims = structuredClone(user.claims);
          if (use === 'id_token') for (const name of USERINFO_ONLY_CLAIMS) delete claims[name];
          return claims as UnknownObject & { sub: string };
        },
      };
    },
    interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>Something went wrong</h1>\n${Object.entries(out)
        .map(([k, v]) => `<p><strong>${escapeHtml(k)}</strong>: <span id="${escapeHtml(k)}">${escapeHtml(String(v))}</span></p>`)
        .join('\n')}`);
    },
    clientBasedCORS: () => false,
    // oidc-provider's default dispatcher refuses special-use IPs (127.0.0.1),
    // which would stop back-channel logout to the test app.
    fetch: (url, init) => {
      const { dispatcher: _ignored, ...rest } = init as RequestInit & { dispatcher?: unknown };
      return fetch(url, rest);
    },
  };

  function createOidcProvider(): ProviderInstance {
    const provider = new oidc.Provider(issuer, {
      ...configuration,
      jwks: { keys: signingKeys.map((k) => k.privateJwk) },
    });
    // Koa would print unexpected errors; the tests assert on responses instead.
    provider.silent = true;

    // Apps registered with anyLoopbackRedirectUri take any loopback URI besides their listed ones.
    // Client is a class of this provider instance, so patching its prototype stays local to it.
    const clientPrototype = provider.Client.prototype;
    const { redirectUriAllowed, postLogoutRedirectUriAllowed } = clientPrototype;
    clientPrototype.redirectUriAllowed = function (this: InstanceType<ProviderInstance['Client']>, value: string) {
      return redirectUriAllowed.call(this, value) || (loopbackApps.has(this.clientId) && isLoopbackUri(value));
    };
    clientPrototype.postLogoutRedirectUriAllowed = function (this: InstanceType<ProviderInstance['Client']>, value: string) {
      return postLogoutRedirectUriAllowed.call(this, value) || (loopbackApps.has(this.clientId) && isLoopbackUri(value));
    };

    // Logto's refresh_token grant also reads organization_id; wrap the built-in one.
    const builtInRefresh = internals(provider).grantTypeHandlers.get('refresh_token');
    if (!builtInRefresh) throw new Error('oidc-provider has no refresh_token grant handler');
    provider.registerGrantType(
      'refresh_token',
      async (ctx) => {
        const organizationId = stringParam(ctx, 'organization_id');
        if (organizationId) {
          await checkOrganizationAccess(provider, ctx, organizationId);
          // An organization token is a token for the reserved resource whose
          // audience (see resourceServerInfo) names the organization.
          const params = ctx.oidc.params as UnknownObject;
          if (!stringParam(ctx, 'resource')) params.resource = ORGANIZATIONS_RESOURCE;
        }
        await builtInRefresh(ctx);
      },
      ['refresh_token', 'scope', 'resource', 'organization_id'],
      ['resource'],
    );

    provider.use(async (ctx, next) => {
      await next();
      const record = requestRecords.get(ctx.req);
      const body = ctx.oidc?.body;
      if (record && body) {
        const flat = flattenParams(Object.entries(body));
        Object.assign(record.params, flat.params);
        Object.assign(record.values, flat.values);
      }
      const responseBody: unknown = ctx.body;
      if (!responseBody || typeof responseBody !== 'object' || Buffer.isBuffer(responseBody)) return;
      const json = responseBody as Record<string, unknown>;
      if (ctx.status >= 400 && typeof json.error === 'string') {
        // Logto's error bodies also carry these two.
        ctx.body = {
          ...json,
          code: `oidc.${json.error}`,
          message: typeof json.error_description === 'string' ? json.error_description : json.error,
        };
      } else if (tamper && ctx.status === 200 && ctx.oidc?.route === 'token') {
        ctx.body = await tamper(json, record?.params ?? {});
      }
    });
    return provider;
  }

  /** Logto's checks for organization_id on a refresh, before the token is looked at further. */
  async function checkOrganizationAccess(provider: ProviderInstance, ctx: KoaContextWithOIDC, organizationId: string): Promise<void> {
    const value = stringParam(ctx, 'refresh_token');
    const refreshToken = value ? await provider.RefreshToken.find(value, { ignoreExpiration: true }) : undefined;
    // Unusable tokens are left to the built-in handler (invalid_grant, reuse detection).
    if (!refreshToken || refreshToken.consumed || refreshToken.isExpired || refreshToken.clientId !== ctx.oidc.client?.clientId) return;
    if (!refreshToken.scopes.has(ORGANIZATIONS_SCOPE)) {
      throw new errors.InsufficientScope('refresh token missing required scope', ORGANIZATIONS_SCOPE);
    }
    const user = refreshToken.accountId ? usersBySub.get(refreshToken.accountId) : undefined;
    if (!user?.organizationRoles[organizationId]) {
      throw new errors.AccessDenied('user is not a member of the organization');
    }
  }

  const loopbackApps = new Set<string>();
  let provider = createOidcProvider();
  let callback = provider.callback();

  // --- Clients ---------------------------------------------------------------------
  const clientAdapter = new StoreAdapter('Client', store);

  async function registerApp(opts: RegisterAppOptions): Promise<TestApp> {
    const appId = opts.appId ?? randomId(21);
    const appSecret = opts.appSecret ?? randomId(32);
    if (opts.anyLoopbackRedirectUri) loopbackApps.add(appId);
    const metadata: AdapterPayload = {
      client_id: appId,
      client_secret: appSecret,
      client_name: opts.name ?? `Test app ${appId}`,
      application_type: 'web',
      redirect_uris: opts.redirectUris,
      post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: alg,
    };
    if (opts.backchannelLogoutUri) {
      metadata.backchannel_logout_uri = opts.backchannelLogoutUri;
      metadata.backchannel_logout_session_required = opts.backchannelLogoutSessionRequired ?? true;
    }
    await clientAdapter.upsert(appId, metadata);
    return { appId, appSecret };
  }

  async function addRedirectUris(appId: string, redirectUris: string[], postLogoutRedirectUris: string[] = []): Promise<void> {
    const metadata = await clientAdapter.find(appId);
    if (!metadata) throw new Error(`unknown app ${appId}`);
    metadata.redirect_uris = [...new Set([...(metadata.redirect_uris ?? []), ...redirectUris])];
    metadata.post_logout_redirect_uris = [
      ...new Set([...(metadata.post_logout_redirect_uris ?? []), ...postLogoutRedirectUris]),
    ];
    await clientAdapter.upsert(appId, metadata);
  }

  const defaultApp = await registerApp({
    redirectUris: options.redirectUris ?? ['http://127.0.0.1:3000/callback'],
    postLogoutRedirectUris: options.postLogoutRedirectUris ?? ['http://127.0.0.1:3000/'],
    ...(options.backchannelLogoutUri ? { backchannelLogoutUri: options.backchannelLogoutUri } : {}),
    ...(options.appName ? { name: options.appName } : {}),
  });

  // --- Routes ------------------------------------------------------------------------
  app.use('/oidc', async (req, res, next) => {
    const url = new URL(req.originalUrl, endpoint);
    const record: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      ...flattenParams(url.searchParams.entries()),
      authorization: req.headers.authorization,
      at: Date.now(),
    };
    requests.push(record);
    requestRecords.set(req, record);

    const fault = faults.get(url.pathname);
    if (!fault) {
      next();
      return;
    }
    if (req.method === 'POST') {
      const flat = flattenParams(new URLSearchParams(await readRawBody(req)).entries());
      Object.assign(record.params, flat.params);
      Object.assign(record.values, flat.values);
    }
    res.status(fault.status).type(fault.contentType ?? 'application/json').send(fault.body);
  });
  // Looked up per request so that a key rotation (new provider instance) takes effect.
  app.use('/oidc', (req, res) => {
    void callback(req, res);
  });

  const formParser = express.urlencoded({ extended: false });

  /** What the pages of an interaction know about the app; kept after the interaction ends (see the error handler). */
  interface AppLabel {
    name: string;
    /** The origin of the redirect URI: the app's home, as far as the provider can tell. */
    home: string | undefined;
  }
  const appsByInteraction = new Map<string, AppLabel>();

  async function appLabelOf(details: InteractionDetails): Promise<AppLabel> {
    const clientId = String(details.params.client_id);
    const metadata = await clientAdapter.find(clientId);
    let home: string | undefined;
    try {
      home = `${new URL(String(details.params.redirect_uri)).origin}/`;
    } catch {
      home = undefined;
    }
    const label = { name: typeof metadata?.client_name === 'string' ? metadata.client_name : clientId, home };
    appsByInteraction.set(details.uid, label);
    // A long-running `npm run provider` must not grow without bound; the oldest go first.
    if (appsByInteraction.size > 1000) appsByInteraction.delete(appsByInteraction.keys().next().value as string);
    return label;
  }

  const cancelForm = (uid: string): string => `<form id="abort" method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button type="submit" id="cancel">Cancel</button>
</form>`;

  function loginPage(uid: string, app: AppLabel, username: string, error?: string): string {
    return page('Sign in', `<h1>Sign in</h1>
<p>to continue to <strong id="app-name">${escapeHtml(app.name)}</strong></p>
${error ? `<p id="error" class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label for="username">Username</label>
  <input id="username" name="username" autocomplete="username" value="${escapeHtml(username)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit" id="sign-in">Sign in</button>
</form>
<p class="switch">No account? <a id="to-register" href="/interaction/${escapeHtml(uid)}?screen=register">Create account</a></p>
${cancelForm(uid)}`);
  }

  function registerPage(uid: string, app: AppLabel, username: string, error?: string): string {
    return page('Create account', `<h1>Create account</h1>
<p>to continue to <strong id="app-name">${escapeHtml(app.name)}</strong></p>
${error ? `<p id="error" class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form id="register" method="post" action="/interaction/${escapeHtml(uid)}/register">
  <label for="username">Username</label>
  <input id="username" name="username" autocomplete="username" value="${escapeHtml(username)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="new-password" minlength="8" required>
  <label for="confirm-password">Confirm password</label>
  <input id="confirm-password" name="confirmPassword" type="password" autocomplete="new-password" minlength="8" required>
  <button type="submit" id="create-account">Create account</button>
</form>
<p class="switch">Already have an account? <a id="to-sign-in" href="/interaction/${escapeHtml(uid)}?screen=sign_in">Sign in</a></p>
${cancelForm(uid)}`);
  }

  /** Logto's username rule: a letter or underscore first, then letters, digits and underscores. */
  function registrationProblem(username: string, password: string, confirmPassword: string): string | undefined {
    if (!/^[A-Za-z_]\w{0,127}$/.test(username)) {
      return 'A username starts with a letter or an underscore and has only letters, digits and underscores.';
    }
    if ([...usersBySub.values()].some((u) => u.username.toLowerCase() === username.toLowerCase())) {
      return 'This username is already in use.';
    }
    // Logto's default password policy: at least 8 characters.
    if (password.length < 8) return 'The password needs at least 8 characters.';
    if (password !== confirmPassword) return 'The passwords do not match.';
    return undefined;
  }

  type InteractionDetails = Awaited<ReturnType<ProviderInstance['interactionDetails']>>;

  /** Logto auto-consents first-party apps: grant every requested scope and resource. */
  async function autoConsent(details: InteractionDetails, accountId: string): Promise<string> {
    const clientId = String(details.params.client_id);
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant || grant.accountId !== accountId) grant = new provider.Grant({ accountId, clientId });
    const requested = typeof details.params.scope === 'string' ? details.params.scope.split(' ') : [];
    grant.addOIDCScope(requested.filter((s) => s === 'openid' || s === 'offline_access' || s in CLAIMS_BY_SCOPE).join(' '));
    const rawResource = details.params.resource;
    const resources = Array.isArray(rawResource) ? rawResource.map(String) : typeof rawResource === 'string' ? [rawResource] : [];
    for (const indicator of resources) {
      const declared =
        indicator === API_RESOURCE ? (API_SCOPES as readonly string[])
          : indicator === ORGANIZATIONS_RESOURCE ? (ORGANIZATION_SCOPES as readonly string[]) : [];
      grant.addResourceScope(indicator, requested.filter((s) => declared.includes(s)).join(' '));
    }
    return grant.save();
  }

  /** first_screen=register opens the register screen, as in Logto; its links switch between the two. */
  function wantsRegister(details: InteractionDetails, screen: unknown): boolean {
    if (screen === 'register') return true;
    if (screen === 'sign_in') return false;
    return details.params.first_screen === 'register';
  }

  /**
   * Logto's one-time token sign-in: the token must be known, unused, unexpired, and issued for the
   * email in login_hint. Returns the user to sign in, or why not (shown on the login page).
   */
  function redeemOneTimeToken(details: InteractionDetails): TestUser | { problem: string } {
    const value = details.params.one_time_token;
    const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint.toLowerCase() : '';
    const issued = typeof value === 'string' ? oneTimeTokens.get(value) : undefined;
    if (!issued || issued.used || issued.expiresAt <= Date.now() || issued.email !== hint) {
      return { problem: 'The one-time token is invalid, expired or already used.' };
    }
    issued.used = true;
    const user = [...usersBySub.values()].find((u) => u.email?.toLowerCase() === issued.email);
    if (!user || suspended.has(user.sub)) return { problem: 'No active account has this email address.' };
    return user;
  }

  app.get('/interaction/:uid', async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login' && details.params.one_time_token !== undefined) {
      const redeemed = redeemOneTimeToken(details);
      if ('problem' in redeemed) {
        const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : '';
        res.type('html').send(loginPage(details.uid, await appLabelOf(details), hint, redeemed.problem));
        return;
      }
      const grantId = await autoConsent(details, redeemed.sub);
      await provider.interactionFinished(req, res, { login: { accountId: redeemed.sub }, consent: { grantId } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name === 'login') {
      const app = await appLabelOf(details);
      if (wantsRegister(details, req.query.screen)) {
        res.type('html').send(registerPage(details.uid, app, ''));
        return;
      }
      const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : '';
      res.type('html').send(loginPage(details.uid, app, hint));
      return;
    }
    const accountId = details.session?.accountId;
    if (!accountId) throw new Error('consent prompt without a session');
    const grantId = await autoConsent(details, accountId);
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  });

  app.post('/interaction/:uid/login', formParser, async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res);
    const form = (req.body ?? {}) as Record<string, unknown>;
    const username = typeof form.username === 'string' ? form.username : '';
    const password = typeof form.password === 'string' ? form.password : '';
    const user = [...usersBySub.values()].find((u) => u.username === username && u.password === password);
    if (!user || suspended.has(user.sub)) {
      res.type('html').send(loginPage(details.uid, await appLabelOf(details), username, 'Incorrect username or password.'));
      return;
    }
    const grantId = await autoConsent(details, user.sub);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  });

  app.post('/interaction/:uid/register', formParser, async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res);
    const form = (req.body ?? {}) as Record<string, unknown>;
    const field = (name: string): string => (typeof form[name] === 'string' ? form[name] : '');
    const username = field('username').trim();
    const problem = registrationProblem(username, field('password'), field('confirmPassword'));
    if (problem) {
      res.type('html').send(registerPage(details.uid, await appLabelOf(details), username, problem));
      return;
    }
    // A new user as Logto creates one from a username and password: no profile, no roles, no organizations.
    const user = buildUser({
      sub: randomId(12),
      username,
      password: field('password'),
      name: null,
      picture: null,
      email: null,
      phone: null,
      roles: [],
      organizationRoles: {},
      customData: {},
      createdAt: Date.now(),
    });
    usersBySub.set(user.sub, user);
    // Registering signs the user in and continues to the app, as in Logto.
    const grantId = await autoConsent(details, user.sub);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  });

  app.post('/interaction/:uid/abort', async (req: Request, res: Response) => {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
  });

  /**
   * Quiet error handler (Express would print the stack). oidc-provider errors keep their status.
   * An interaction that is gone (finished, expired, or its cookie lost, as when the browser goes
   * back to a used sign-in form) gets a page that sends the person back to the app to start again.
   */
  app.use((err: unknown, req: Request, res: Response, _next: express.NextFunction) => {
    if (res.headersSent) return;
    const status = (err as { statusCode?: unknown }).statusCode;
    const description = (err as { error_description?: unknown }).error_description;
    const detail = typeof description === 'string' ? description : err instanceof Error ? err.message : String(err);
    const uid = /^\/interaction\/([^/]+)/.exec(req.path)?.[1];
    const known = uid === undefined ? undefined : appsByInteraction.get(uid);
    const back = known?.home
      ? `<p><a id="back-to-app" class="button" href="${escapeHtml(known.home)}">Back to ${escapeHtml(known.name)}</a></p>`
      : '<p>Go back to the application and sign in from there.</p>';
    const body = err instanceof errors.SessionNotFound
      ? `<h1>This sign-in has ended</h1>
<p id="error-message">This page belongs to a sign-in that has already finished or has expired, so it cannot be used again.
${known ? `Return to <strong id="app-name">${escapeHtml(known.name)}</strong>; if you are not signed in there, start the sign-in again.` : ''}</p>
${back}
<p class="detail">Details: <span id="error-detail">${escapeHtml(detail)}</span></p>`
      : `<h1>Something went wrong</h1>
<p id="error-message">${escapeHtml(detail)}</p>
${back}`;
    res.status(typeof status === 'number' ? status : 500).type('html').send(page('Sign-in ended', body));
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
    requests,
    countRequests(path, filter) {
      return requests.filter((r) => r.path === path && (!filter || filter(r))).length;
    },
    resetRequests() {
      requests.length = 0;
    },
    revokedGrants() {
      return store.revokedGrants;
    },
    registerApp,
    addRedirectUris,
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
    setTokenResponseTamper(fn) {
      tamper = fn;
    },
    setFault(path, fault) {
      if (fault) faults.set(path, fault);
      else faults.delete(path);
    },
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
