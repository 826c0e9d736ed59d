/**
 * Every `js` and `ts` snippet of README.md and docs/*.md runs as written, and type-checks with `strict`.
 *
 * The snippets are found, not listed: each fenced block is read with the marker on the line before
 * it (see test/support/readme-snippets.ts for the markers and how a fragment is put into the
 * program it continues). Each becomes a module in a folder inside the package, so that
 * `import 'passport-logto'` resolves to the built package (dist/, which `npm test` builds first)
 * as it would from npm. Every module is type-checked in a process of its own, beside the tests;
 * every module is imported here and driven over HTTP against the real test provider on
 * 127.0.0.1, with real Express, Passport, express-session, cookie-session and Redis, and the test
 * checks what the snippet says a user sees. A block without a marker, or without an exercise
 * below, fails its test; so does an exercise whose block is gone.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { tsImport } from 'tsx/esm/api';
import { after, before, describe, test } from 'node:test';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { decodeJwt } from 'jose';
import { logtoBearer, type LogtoStrategy } from '../lib/index.js';
import { cancelAtProvider, endSessionAtProvider, signInAtProvider, TestBrowser, type RequestInitLite, type TestResponse } from './support/http-client.js';
import { API_RESOURCE, startProvider, type TestApp, type TestProvider } from './support/provider/index.js';
import { buildProgram, readAllSnippets, type SnippetProgram } from './support/readme-snippets.js';
import { freePort, startRedis, type RunningRedis } from './support/redis.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const root = new URL('..', import.meta.url).pathname;
// Inside the package, so that `import 'passport-logto'` resolves to this package as it would from npm.
const folder = join(root, 'test-results', `readme-snippets-${process.pid}`);
const snippets = readAllSnippets(root);

/**
 * Type errors that come from a bug in lib/, not from the README: the snippet is left as the README
 * shows it, its other lines must type-check, and a `todo` test shows the bug until lib/ is fixed.
 */
const libTypeBugs: Record<string, { bug: string; error: RegExp }> = {};

let provider: TestProvider;
let registered: TestApp;
let redis: RunningRedis;
let programs: Map<string, SnippetProgram & { file: string }>;
let typeErrors: Promise<Record<string, Array<{ line: number; message: string }>>>;
const servers: Server[] = [];
/** What the snippets opened besides their servers (Redis clients, an undici Agent), closed at the end even when a test fails. */
const cleanups: Array<() => unknown> = [];

before(async () => {
  await mkdir(folder, { recursive: true });
  programs = new Map();
  for (const snippet of snippets) {
    if (snippet.problem) continue;
    try {
      const program = buildProgram(snippet, snippets);
      const file = join(folder, `${snippet.id}.${program.language === 'ts' ? 'mts' : 'mjs'}`);
      await writeFile(file, program.source);
      programs.set(snippet.id, { ...program, file });
    } catch (error) {
      snippet.problem = `${snippet.file} line ${snippet.line}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  const files = [...programs.values()].map((program) => program.file);
  const checking = run(process.execPath, ['--import', 'tsx', join(root, 'test', 'support', 'readme-typecheck.ts'), ...files], { cwd: folder, maxBuffer: 64 * 1024 * 1024 });
  typeErrors = checking.then(({ stdout }) => JSON.parse(stdout) as Record<string, Array<{ line: number; message: string }>>);
  typeErrors.catch(() => undefined); // awaited by each test

  provider = await startProvider();
  registered = await provider.registerApp({
    redirectUris: ['http://127.0.0.1:3000/callback'],
    postLogoutRedirectUris: ['http://127.0.0.1:3000/'],
    anyLoopbackRedirectUri: true,
  });
  redis = await startRedis();
  Object.assign(process.env, {
    LOGTO_ENDPOINT: provider.endpoint,
    LOGTO_APP_ID: registered.appId,
    LOGTO_APP_SECRET: registered.appSecret,
    SESSION_SECRET: 'readme-snippets-secret',
    REDIS_URL: redis.url,
  });
});

after(async () => {
  for (const cleanup of cleanups) await Promise.resolve().then(cleanup).catch(() => undefined);
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await redis?.stop();
  await provider?.close();
  await rm(folder, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// Running a snippet
// ---------------------------------------------------------------------------

interface Loaded {
  /** `http://127.0.0.1:<port>`: where the program's `app.listen` listens. */
  base: string;
  app: Express;
  logto: LogtoStrategy;
  /** The values of the snippet's top-level expression statements, in order. */
  values: unknown[];
  /** Everything else the program declares at top level. */
  exports: Record<string, unknown>;
}

let loads = 0;

/** Imports the snippet's program with `env` set (PORT is a free port), and waits for its server. */
async function load(id: string, env: Record<string, string> = {}): Promise<Loaded> {
  const program = programs.get(id);
  assert.ok(program, `snippet ${id} has a program`);
  const port = env.PORT ?? String(await freePort());
  Object.assign(process.env, { ...env, PORT: port });
  loads += 1;
  const exports = (await import(`${pathToFileURL(program.file).href}?load=${loads}`)) as Record<string, unknown>;
  const server = exports.server as Server | undefined;
  if (server) {
    servers.push(server);
    if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
  }
  return {
    base: `http://127.0.0.1:${port}`,
    app: exports.app as Express,
    logto: exports.logto as LogtoStrategy,
    values: exports.__values as unknown[],
    exports,
  };
}

/** Signs in through the app's `/sign-in` as demo; returns the callback's answer. */
async function signIn(browser: TestBrowser, base: string, path = '/sign-in'): Promise<TestResponse> {
  const started = await browser.get(`${base}${path}`);
  assert.equal(started.status, 302, `${path} starts a sign-in: ${started.status} ${started.text}`);
  const callback = await signInAtProvider(browser, started.location ?? '', provider.users.demo, `${base}/callback`);
  return browser.get(callback);
}

const json = async <T = Record<string, unknown>>(response: Promise<TestResponse>): Promise<{ status: number; body: T }> => {
  const answered = await response;
  return { status: answered.status, body: JSON.parse(answered.text) as T };
};

const now = (): number => Math.floor(Date.now() / 1000);

/** An access token signed with the provider's real key, as Logto issues them. */
function accessToken(claims: Record<string, unknown>): Promise<string> {
  return provider.sign(
    { iss: provider.issuer, sub: provider.users.demo.sub, client_id: registered.appId, iat: now(), exp: now() + 600, jti: randomUUID(), ...claims },
    { typ: 'at+jwt' },
  );
}

const bearer = (token: string): RequestInitLite => ({ headers: { authorization: `Bearer ${token}` } });

/** A browser's page navigation, as the silent sign-in tells it from a script's request. */
const navigation: RequestInitLite = { raw: true, headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' } };

/** A small API on 127.0.0.1 that wants Logto access tokens for API_RESOURCE. */
async function startItemsApi(): Promise<string> {
  const api = express();
  api.get('/items', logtoBearer({ endpoint: provider.endpoint, audience: API_RESOURCE, requiredScopes: ['read:items'] }), (req, res) => {
    res.json({ items: ['apple', 'pear'], for: (req.user as { sub: string }).sub });
  });
  const server = createServer(api);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** What the Fastify and Koa snippets promise: the guard, sign-in, the helper and sign-out. */
async function hostSnippetFlow(base: string, sessionCookies: string[]): Promise<void> {
  const visitor = new TestBrowser();
  assert.equal((await visitor.get(`${base}/profile`)).location, `${base}/sign-in`, 'the guard sends a signed-out visitor to sign in');
  const browser = new TestBrowser();
  assert.equal((await browser.get(`${base}/`)).text, 'Signed out');
  assert.equal((await signIn(browser, base)).location, `${base}/`);
  assert.equal((await browser.get(`${base}/`)).text, 'Signed in');
  const profile = await json<{ sub: string; username: string }>(browser.get(`${base}/profile`));
  assert.equal(profile.body.sub, provider.users.demo.sub);
  assert.equal(profile.body.username, 'demo');
  // A copy of the session's cookies, kept to be replayed after sign-out.
  const hostname = new URL(base).hostname;
  const copied = sessionCookies.map((name) => `${name}=${browser.cookie(hostname, name) ?? ''}`).join('; ');
  const replay = (path: string): Promise<TestResponse> => new TestBrowser().request(`${base}${path}`, { headers: { cookie: copied } });
  assert.equal((await replay('/')).text, 'Signed in', 'the copy is signed in before sign-out');
  const signOut = await browser.request(`${base}/sign-out`, { method: 'POST', headers: { origin: base } });
  assert.equal(signOut.status, 302);
  assert.ok(signOut.location?.startsWith(`${provider.endpoint}/oidc/session/end`), signOut.location);
  assert.equal((await browser.get(`${base}/`)).text, 'Signed out');
  assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`);
  // The snippet's session check signs the replayed copy out too.
  assert.equal((await replay('/')).text, 'Signed out', 'a copy of the cookie replayed after sign-out is signed out');
  assert.equal((await replay('/profile')).location, `${base}/sign-in`);
}

/**
 * Runs a Koa snippet through hostSnippetFlow. koa-passport sets its Koa adapter on the Passport
 * instance it uses once, when first loaded; where that is the default instance the Express
 * snippets share, each Koa snippet sets the adapter for its run and puts Express's back after it.
 */
async function koaSnippetFlow(id: string): Promise<void> {
  try {
    (require('koa-passport') as { framework(framework: unknown): void }).framework((require('koa-passport/lib/framework/koa') as () => unknown)());
    const { base } = await load(id);
    await hostSnippetFlow(base, ['koa.sess', 'koa.sess.sig']);
  } finally {
    (require('passport') as { framework(framework: unknown): void }).framework((require('passport/lib/framework/connect') as () => unknown)());
  }
}

/** Imports a NestJS snippet with a tsconfig that has `experimentalDecorators`, as a Nest app's has (`load` uses the test run's tsx, which has none); returns its base URL. */
async function loadNest(id: string, env: Record<string, string> = {}): Promise<string> {
  const program = programs.get(id);
  assert.ok(program, `snippet ${id} has a program`);
  const port = await freePort();
  Object.assign(process.env, { ...env, PORT: String(port) });
  const tsconfig = join(folder, 'tsconfig.json');
  await writeFile(tsconfig, JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', experimentalDecorators: true } }));
  const exports = (await tsImport(pathToFileURL(program.file).href, { parentURL: import.meta.url, tsconfig })) as { app: { close(): Promise<void>; getHttpServer(): Server } };
  cleanups.push(async () => {
    exports.app.getHttpServer().closeAllConnections();
    await exports.app.close();
  });
  return `http://127.0.0.1:${port}`;
}

// ---------------------------------------------------------------------------
// What each snippet promises
// ---------------------------------------------------------------------------

const exercises: Record<string, () => Promise<void>> = {
  async 'quick-start'() {
    const { base } = await load('quick-start');
    // A failed sign-in: the failure page says why (failureMessage), once.
    const failing = new TestBrowser();
    const failed = await failing.get(`${base}/callback?code=x&state=made-up&iss=${encodeURIComponent(provider.issuer)}`);
    assert.equal(failed.location, `${base}/sign-in-failed`);
    const reason = await failing.get(`${base}/sign-in-failed`);
    assert.equal(reason.status, 401);
    assert.equal(
      reason.text,
      '<p>Sign-in failed: This sign-in is unknown to this browser or was already completed; start the sign-in again.</p><a href="/sign-in">Try again</a>',
    );
    assert.match((await failing.get(`${base}/sign-in-failed`)).text, /Sign-in failed: The sign-in did not complete\./, 'shown once');

    const browser = new TestBrowser();
    assert.match((await browser.get(`${base}/`)).text, /Sign in/);
    assert.equal((await signIn(browser, base)).location, `${base}/`);
    assert.match((await browser.get(`${base}/`)).text, /Signed in/);
    const profile = await json<{ username: string; email: string }>(browser.get(`${base}/profile`));
    assert.equal(profile.body.username, 'demo');
    assert.equal(profile.body.email, 'demo@example.com', 'UserScope.Email puts the email in the ID token');

    const signOut = await browser.request(`${base}/sign-out`, { method: 'POST', headers: { origin: base } });
    assert.equal(signOut.status, 302);
    assert.ok(signOut.location?.startsWith(`${provider.endpoint}/oidc/session/end`), signOut.location);
    assert.match((await browser.get(`${base}/`)).text, /Sign in/);
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`);
  },

  async 'redis-sessions'() {
    const client = await redis.client();
    await client.flushAll();
    const one = await load('redis-sessions');
    cleanups.push(() => (one.exports.redis as { quit(): Promise<unknown> }).quit());
    const browser = new TestBrowser();
    assert.equal((await signIn(browser, one.base)).location, `${one.base}/`);
    const cookie = decodeURIComponent(browser.cookie('127.0.0.1', 'connect.sid') ?? '');
    const sessionId = /^s:([^.]+)\./.exec(cookie)?.[1];
    assert.ok(sessionId, `a signed session cookie: ${cookie}`);
    const stored = JSON.parse((await client.get(`sess:${sessionId}`)) ?? 'null') as { passport?: { user?: { id?: string } } } | null;
    assert.equal(stored?.passport?.user?.id, provider.users.demo.sub, 'the session lives in Redis');
    assert.equal((await client.keys('passport-logto:tokens:*')).length, 1, 'so does the sign-in’s token record');

    // A second instance of the app, on the same Redis, serves the same browser's session.
    const two = await load('redis-sessions');
    cleanups.push(() => (two.exports.redis as { quit(): Promise<unknown> }).quit());
    const profile = await json<{ username: string }>(browser.get(`${two.base}/profile`));
    assert.equal(profile.status, 200);
    assert.equal(profile.body.username, 'demo');
  },

  async 'redis-token-store'() {
    const client = await redis.client();
    await client.flushAll();
    const { base, app, logto, exports } = await load('redis-token-store');
    cleanups.push(() => (exports.tokenRedis as { disconnect(): void }).disconnect());
    app.get('/id-token', logto.authenticated({}, (req, res) => void res.json(req.logto.getIdToken())));
    const browser = new TestBrowser();
    await signIn(browser, base);
    assert.equal((await json<{ username: string }>(browser.get(`${base}/profile`))).body.username, 'demo');
    const records = await client.keys('passport-logto:tokens:*');
    assert.equal(records.length, 1, 'the sign-in’s record is in Redis, under RedisTokenStore’s prefix');
    const idToken = (await json<string>(browser.get(`${base}/id-token`))).body;
    assert.ok((await client.get(records[0] ?? ''))?.includes(idToken), 'with its tokens');
    assert.deepEqual(await client.keys('sess:*'), [], 'the sessions stay in express-session’s MemoryStore');
  },

  async 'cookie-session'() {
    const { base } = await load('cookie-session');
    const browser = new TestBrowser();
    assert.equal((await signIn(browser, base)).location, `${base}/`);
    assert.ok(browser.cookie('127.0.0.1', 'session'), 'the session is the cookie-session cookie');
    assert.equal(browser.cookie('127.0.0.1', 'connect.sid'), undefined, 'no express-session');
    assert.equal((await json<{ username: string }>(browser.get(`${base}/profile`))).body.username, 'demo');
    const signOut = await browser.request(`${base}/sign-out`, { method: 'POST', headers: { origin: base } });
    assert.ok(signOut.location?.startsWith(`${provider.endpoint}/oidc/session/end`), signOut.location);
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`);
  },

  async 'verify-function'() {
    const { base, app, exports } = await load('verify-function');
    app.get('/whoami', (req, res) => void res.json(req.user));
    const browser = new TestBrowser();
    await signIn(browser, base);
    const { demo } = provider.users;
    assert.deepEqual((exports.db as { users: { upserts: unknown[] } }).users.upserts, [{ logtoId: demo.sub, email: demo.email }]);
    assert.deepEqual((await json(browser.get(`${base}/whoami`))).body, { id: `user-${demo.sub}`, logtoId: demo.sub, email: demo.email }, 'req.user is what the verify function returned');
  },

  async 'verify-profile'() {
    const { base, app, exports } = await load('verify-profile');
    app.get('/whoami', (req, res) => void res.json(req.user));
    const browser = new TestBrowser();
    await signIn(browser, base);
    const { demo } = provider.users;
    assert.deepEqual((exports.db as { users: { upserts: unknown[] } }).users.upserts, [{ logtoId: demo.sub, email: demo.email }], 'the profile gave the id and the email');
    assert.deepEqual((await json(browser.get(`${base}/whoami`))).body, { id: `user-${demo.sub}`, logtoId: demo.sub, email: demo.email });
  },

  async typescript() {
    const { base, app } = await load('typescript');
    app.get('/whoami', (req, res) => void res.json(req.user));
    const browser = new TestBrowser();
    const started = await browser.get(`${base}/sign-up`);
    assert.equal(started.status, 302);
    const authorization = new URL(started.location ?? '');
    assert.equal(authorization.searchParams.get('first_screen'), 'register');
    assert.deepEqual(authorization.searchParams.get('scope')?.split(' '), ['openid', 'offline_access', 'profile', 'email', 'phone'], 'the per-request scope on top of the configured ones');
    await signIn(browser, base);
    const { demo } = provider.users;
    assert.deepEqual((await json(browser.get(`${base}/whoami`))).body, { id: demo.sub, email: demo.email }, 'req.user is what the verify function returned');
  },

  async 'magic-link'() {
    const { base } = await load('magic-link');
    const browser = new TestBrowser();
    const broken = await browser.get(`${base}/magic?token=only`);
    assert.equal(broken.status, 400);
    assert.equal(broken.text, 'Broken link');

    const token = provider.issueOneTimeToken('demo@example.com');
    const started = await browser.get(`${base}/magic?token=${token}&email=demo%40example.com`);
    assert.equal(started.status, 302);
    const authorization = new URL(started.location ?? '');
    assert.equal(authorization.searchParams.get('one_time_token'), token);
    assert.equal(authorization.searchParams.get('login_hint'), 'demo@example.com');
    // No password: Logto signs the user in with the token and sends the browser back at once.
    const { chain } = await browser.follow(authorization.href, { stopAt: (url) => url.startsWith(`${base}/callback`) });
    const callback = chain[chain.length - 1] ?? '';
    assert.ok(callback.startsWith(`${base}/callback`), `back at the callback without a sign-in page: ${chain.join(' -> ')}`);
    assert.equal((await browser.get(callback)).location, `${base}/`);
    assert.equal((await json<{ username: string }>(browser.get(`${base}/profile`))).body.username, 'demo');
  },

  async 'route-guard'() {
    const { base } = await load('route-guard');
    const browser = new TestBrowser();
    assert.deepEqual(await json(browser.get(`${base}/api/me`)), { status: 401, body: { error: 'not_authenticated' } });
    assert.equal((await browser.get(`${base}/settings`)).location, `${base}/sign-in`);
    assert.equal((await browser.get(`${base}/dashboard`)).location, `${base}/sign-in`);
    // The next sign-in lands on the page the guard turned the visitor away from.
    assert.equal((await signIn(browser, base)).location, `${base}/dashboard`);

    const dashboard = await json<{ handler: string; user: { id: string } }>(browser.get(`${base}/dashboard`));
    assert.equal(dashboard.status, 200);
    assert.deepEqual([dashboard.body.handler, dashboard.body.user.id], ['/dashboard', provider.users.demo.sub]);
    assert.equal((await json<{ handler: string }>(browser.get(`${base}/api/me`))).body.handler, '/api/me');
    const settings = await json<{ sub: string; email: string }>(browser.get(`${base}/settings`));
    assert.deepEqual([settings.body.sub, settings.body.email], [provider.users.demo.sub, 'demo@example.com'], 'req.logto.userInfo is Logto’s userinfo');
  },

  async 'silent-sign-in'() {
    // A page after the middleware, as the snippet's comment places it.
    const page = (app: Express): void => void app.get('/page', (req, res) => void res.send(req.user ? `Hello ${(req.user as { username: string }).username}` : 'Hello stranger'));

    // A visitor who already has a Logto session (from signing in to another instance: another
    // app of yours, say) comes back signed in, without seeing a Logto page.
    const known = new TestBrowser();
    const other = await load('silent-sign-in');
    await signIn(known, other.base);
    const { base, app } = await load('silent-sign-in');
    page(app);
    assert.equal((await known.request(`${base}/page`, { headers: { accept: 'text/html' } })).text, 'Hello stranger', 'a script’s request is never redirected');
    // The first page view only sets a cookie: a client that keeps none is never sent to Logto.
    const firstView = await known.request(`${base}/page`, navigation);
    assert.deepEqual([firstView.status, firstView.text], [200, 'Hello stranger']);
    const detour = await known.request(`${base}/page`, navigation);
    assert.equal(detour.status, 302);
    assert.equal(new URL(detour.location ?? '').searchParams.get('prompt'), 'none');
    const { chain } = await known.follow(detour.location ?? '', { stopAt: (url) => url.startsWith(`${base}/callback`) });
    const back = await known.get(chain[chain.length - 1] ?? '');
    assert.equal(back.location, `${base}/page`);
    assert.equal((await known.request(`${base}/page`, navigation)).text, 'Hello demo');

    // One who has none comes back to the same page, signed out, and is not sent again.
    const stranger = new TestBrowser();
    assert.equal((await stranger.request(`${base}/page`, navigation)).status, 200, 'the first view is served as it is');
    const attempt = await stranger.request(`${base}/page`, navigation);
    assert.equal(attempt.status, 302);
    const tried = await stranger.follow(attempt.location ?? '', { stopAt: (url) => url.startsWith(`${base}/callback`) });
    assert.equal((await stranger.get(tried.chain[tried.chain.length - 1] ?? '')).location, `${base}/page`);
    const again = await stranger.request(`${base}/page`, navigation);
    assert.deepEqual([again.status, again.text], [200, 'Hello stranger']);
  },

  async 'api-resources'() {
    const api = await startItemsApi();
    const { base } = await load('api-resources', { API_URL: api });
    const browser = new TestBrowser();
    assert.equal((await browser.get(`${base}/items`)).location, `${base}/sign-in`);
    assert.equal((await signIn(browser, base)).location, `${base}/items`);
    assert.deepEqual(await json(browser.get(`${base}/items`)), { status: 200, body: { items: ['apple', 'pear'], for: provider.users.demo.sub } });
  },

  async 'organization-tokens'() {
    const { base } = await load('organization-tokens');
    const browser = new TestBrowser();
    await signIn(browser, base);
    const { status, body } = await json<string[]>(browser.get(`${base}/snippet`));
    assert.equal(status, 200);
    const [organizationToken, apiToken] = body.map((token) => decodeJwt(token));
    assert.equal(organizationToken?.aud, 'urn:logto:organization:org-acme');
    assert.match(String(organizationToken?.scope), /\bread:members\b/);
    assert.equal(apiToken?.aud, API_RESOURCE);
    assert.equal(apiToken?.organization_id, 'org-acme');
  },

  async organizations() {
    const { base } = await load('organizations');
    const browser = new TestBrowser();
    await signIn(browser, base);
    const { status, body } = await json<unknown[]>(browser.get(`${base}/snippet`));
    assert.equal(status, 200);
    assert.deepEqual(body[0], [{ id: 'org-acme', roles: ['member'] }]);
    assert.deepEqual(body[1], [{ id: 'org-acme', roles: ['member'], name: 'Acme', description: 'Acme Corporation, the organization demo belongs to' }]);
  },

  async 'stale-scopes'() {
    const { base, app, logto } = await load('stale-scopes');
    app.get(
      '/tokens',
      logto.authenticated({}, async (req, res) => {
        res.json({ organization: await req.logto.getOrganizationToken('org-acme'), api: await req.logto.getAccessToken(API_RESOURCE), id: req.logto.getIdToken() });
      }),
    );
    const browser = new TestBrowser();
    await signIn(browser, base);
    type Tokens = { organization: string; api: string; id: string };
    const before = (await json<Tokens>(browser.get(`${base}/tokens`))).body;
    const refreshes = (): number => provider.countRequests('/oidc/token', (request) => request.params.grant_type === 'refresh_token');
    const refreshesBefore = refreshes();

    const { status, body } = await json<unknown[]>(browser.get(`${base}/snippet`));
    assert.equal(status, 200);
    const forced = body[3];
    assert.equal(typeof forced, 'string');
    assert.notEqual(forced, before.api, 'forceRefresh: true gives a new token now');
    assert.ok(refreshes() >= refreshesBefore + 2, 'the forced token and refresh() each asked Logto');

    const afterwards = (await json<Tokens>(browser.get(`${base}/tokens`))).body;
    assert.equal(afterwards.api, forced, 'the new token is the one kept');
    assert.notEqual(afterwards.organization, before.organization, 'the organization’s token was cleared: a new one was asked for');
    assert.notEqual(afterwards.id, before.id, 'refresh() replaced the ID token');
  },

  async 'sign-out'() {
    const { base } = await load('sign-out');
    const browser = new TestBrowser();
    await signIn(browser, base);
    const switching = await browser.request(`${base}/switch-account`, { method: 'POST', headers: { origin: base } });
    assert.equal(switching.status, 302);
    const endSession = new URL(switching.location ?? '');
    assert.equal(`${endSession.origin}${endSession.pathname}`, `${provider.endpoint}/oidc/session/end`);
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${base}/sign-in`);
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`, 'signed out of the app');
    assert.ok((await endSessionAtProvider(browser, endSession.href)).startsWith(`${base}/sign-in`), 'and of Logto, landing on the sign-in route');

    await signIn(browser, base);
    const crossSite = await browser.request(`${base}/sign-out`, { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } });
    assert.equal(crossSite.status, 403);
    assert.equal((await browser.get(`${base}/profile`)).status, 200, 'a cross-site request signs nobody out');
    const signOut = await browser.request(`${base}/sign-out`, { method: 'POST', headers: { origin: base } });
    assert.equal(new URL(signOut.location ?? '').searchParams.get('post_logout_redirect_uri'), `${base}/`);
  },

  async 'log-out'() {
    const { base } = await load('log-out');
    const browser = new TestBrowser();
    await signIn(browser, base);
    const before = provider.countRequests('/oidc/token/revocation');
    const loggedOut = await browser.request(`${base}/log-out`, { method: 'POST', headers: { origin: base } });
    assert.deepEqual([loggedOut.status, loggedOut.location], [302, `${base}/`]);
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`, 'logged out of the app');
    assert.equal(provider.countRequests('/oidc/token/revocation'), before + 1, 'and the sign-in ended: its refresh token was revoked at Logto');
    // The Logto session stays: the next sign-in goes through without the sign-in page.
    const started = await browser.get(`${base}/sign-in`);
    const atLogto = await browser.get(started.location ?? '');
    assert.equal(atLogto.status, 303, `Logto signs the user straight back in: ${atLogto.status} ${atLogto.location}`);
  },

  async 'tenants-log-out'() {
    const { base } = await load('tenants-log-out');
    const browser = new TestBrowser();
    // At 127.0.0.1, outside every tenant's host, with no sign-in: it still logs out (of nothing) and redirects.
    const loggedOut = await browser.request(`${base}/log-out`, { method: 'POST', headers: { origin: base } });
    assert.deepEqual([loggedOut.status, loggedOut.location], [302, `${base}/`], loggedOut.text);
  },

  async tenants() {
    const { base, app } = await load('tenants');
    const errors: unknown[] = [];
    app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
      errors.push(error);
      res.status(500).json({ code: (error as { code?: string }).code });
    });
    const browser = new TestBrowser();
    const asHost = (host: string, path: string): Promise<TestResponse> => browser.request(`${base}${path}`, { raw: true, headers: { host } });
    // Each tenant's guard answers for its own host; none of this needs to reach the tenants' Logto.
    for (const host of ['acme.example.com', 'globex.example.com']) {
      const me = await asHost(host, '/me');
      assert.deepEqual([me.status, JSON.parse(me.text)], [401, { error: 'not_authenticated' }], host);
    }
    const unknown = await asHost('other.example.com', '/me');
    assert.equal(unknown.status, 404, 'a host no tenant serves is the request\'s fault');
    assert.equal((JSON.parse(unknown.text) as { error?: string }).error, 'unknown_tenant');
    assert.equal(errors.length, 0, 'and never reaches the error handler');
  },

  async bearer() {
    const { base } = await load('bearer');
    const browser = new TestBrowser();
    const good = await json(browser.request(`${base}/api/items`, bearer(await accessToken({ aud: API_RESOURCE, scope: 'read:items' }))));
    assert.deepEqual(good, { status: 200, body: { user: provider.users.demo.sub, scopes: ['read:items'] } });

    const none = await browser.get(`${base}/api/items`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]*"$/);
    const basic = await browser.request(`${base}/api/items`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    assert.equal(basic.status, 401);
    assert.doesNotMatch(basic.headers.get('www-authenticate') ?? '', /error=/);
    const malformed = await browser.request(`${base}/api/items`, { headers: { authorization: 'Bearer' } });
    assert.equal(malformed.status, 400);
    assert.match(malformed.headers.get('www-authenticate') ?? '', /error="invalid_request"/);
    const expired = await browser.request(`${base}/api/items`, bearer(await accessToken({ aud: API_RESOURCE, scope: 'read:items', iat: now() - 7200, exp: now() - 3600 })));
    assert.equal(expired.status, 401);
    assert.match(expired.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    const unscoped = await browser.request(`${base}/api/items`, bearer(await accessToken({ aud: API_RESOURCE, scope: 'write:items' })));
    assert.equal(unscoped.status, 403);
    assert.match(unscoped.headers.get('www-authenticate') ?? '', /error="insufficient_scope".*read:items/);
  },

  async 'bearer-without-passport'() {
    const { base } = await load('bearer-without-passport');
    const browser = new TestBrowser();
    const good = await json<{ handler: string; user: { sub: string } }>(browser.request(`${base}/api/items`, bearer(await accessToken({ aud: API_RESOURCE, scope: 'read:items' }))));
    assert.equal(good.status, 200);
    assert.deepEqual([good.body.handler, good.body.user.sub], ['/api/items', provider.users.demo.sub]);
    assert.equal((await browser.get(`${base}/api/items`)).status, 401);
    assert.equal((await browser.request(`${base}/api/items`, bearer(await accessToken({ aud: 'https://other.example.com', scope: 'read:items' })))).status, 401);
    assert.equal((await browser.request(`${base}/api/items`, bearer(await accessToken({ aud: API_RESOURCE, scope: '' })))).status, 403);
  },

  async 'organization-bearer'() {
    const { base } = await load('organization-bearer');
    const browser = new TestBrowser();
    const acme = await accessToken({ aud: 'urn:logto:organization:org-acme', scope: 'read:members' });
    const members = await json<{ handler: string }>(browser.request(`${base}/orgs/org-acme/members`, bearer(acme)));
    assert.deepEqual([members.status, members.body.handler], [200, '/orgs/org-acme/members']);
    assert.equal((await browser.request(`${base}/orgs/org-globex/members`, bearer(acme))).status, 403, 'a token for org-acme is refused at org-globex');
    const withoutScope = await accessToken({ aud: 'urn:logto:organization:org-acme', scope: '' });
    assert.equal((await browser.request(`${base}/orgs/org-acme/members`, bearer(withoutScope))).status, 403, 'read:members is required');
    assert.equal((await browser.request(`${base}/orgs/org-acme/members`, bearer(await accessToken({ aud: API_RESOURCE, scope: 'read:members' })))).status, 401, 'not an organization token');

    assert.deepEqual(await json(browser.request(`${base}/me/organization`, bearer(acme))), { status: 200, body: { organization: 'org-acme' } });
    const globex = await accessToken({ aud: 'urn:logto:organization:org-globex' });
    assert.deepEqual(await json(browser.request(`${base}/me/organization`, bearer(globex))), { status: 200, body: { organization: 'org-globex' } });
  },

  async 'back-channel-logout'() {
    const port = String(await freePort());
    const app = await provider.registerApp({
      redirectUris: [`http://127.0.0.1:${port}/callback`],
      postLogoutRedirectUris: [`http://127.0.0.1:${port}/`],
      backchannelLogoutUri: `http://127.0.0.1:${port}/logto/backchannel-logout`,
    });
    const { base } = await load('back-channel-logout', { PORT: port, LOGTO_APP_ID: app.appId, LOGTO_APP_SECRET: app.appSecret });
    Object.assign(process.env, { LOGTO_APP_ID: registered.appId, LOGTO_APP_SECRET: registered.appSecret });

    const bad = await fetch(`${base}/logto/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: 'not-a-token' }) });
    assert.equal(bad.status, 400);

    const browser = new TestBrowser();
    await signIn(browser, base);
    assert.equal((await browser.get(`${base}/profile`)).status, 200);
    // The user's Logto session ends elsewhere (here, at Logto's own end-session page): Logto
    // posts a logout token to the app, which ends the sign-in.
    await endSessionAtProvider(browser, `${provider.endpoint}/oidc/session/end`);
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`);
    assert.match((await browser.get(`${base}/`)).text, /Sign in/);
  },

  async 'oidc-config'() {
    const { base, values, exports } = await load('oidc-config');
    const oidc = `${provider.endpoint}/oidc`;
    assert.deepEqual(values, [`${oidc}/me`, `${oidc}/session/end`]);
    const config = exports.config as Record<string, unknown>;
    assert.equal(config.issuer, oidc);
    assert.deepEqual(
      [config.authorizationEndpoint, config.tokenEndpoint, config.endSessionEndpoint, config.jwksUri],
      [`${oidc}/auth`, `${oidc}/token`, `${oidc}/session/end`, `${oidc}/jwks`],
    );
    // The strategy that discovered it still signs users in.
    const browser = new TestBrowser();
    assert.equal((await signIn(browser, base)).location, `${base}/`);
  },

  async fastify() {
    const { base, exports } = await load('fastify');
    cleanups.push(() => (exports.app as { close(): Promise<void> }).close());
    await hostSnippetFlow(base, ['session']);
  },

  async koa() {
    await koaSnippetFlow('koa');
  },

  async fetch() {
    const { base, exports } = await load('fetch');
    const dispatcher = exports.dispatcher as { on(event: 'connect', listener: (origin: URL) => void): void; close(): Promise<void> };
    cleanups.push(() => dispatcher.close());
    const connections: string[] = [];
    dispatcher.on('connect', (origin) => connections.push(origin.origin));
    const browser = new TestBrowser();
    assert.equal((await signIn(browser, base)).location, `${base}/`);
    assert.equal((await json<{ username: string }>(browser.get(`${base}/profile`))).body.username, 'demo');
    assert.ok(connections.includes(provider.endpoint), `the requests to Logto went through the snippet's dispatcher: ${connections.join(', ')}`);
  },

  async nestjs() {
    const base = await loadNest('nestjs');
    const browser = new TestBrowser();

    // A signed-out visit goes to sign-in and comes back to the same page.
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`);
    assert.equal((await signIn(browser, base)).location, `${base}/profile`);
    const profile = await json<{ sub: string; email: string }>(browser.get(`${base}/profile`));
    assert.equal(profile.status, 200);
    assert.equal(profile.body.sub, provider.users.demo.sub);
    assert.equal(profile.body.email, 'demo@example.com');

    // The API route takes Logto access tokens for its audience and scope.
    const token = await accessToken({ aud: API_RESOURCE, scope: 'read:items' });
    const me = await json<{ id: string }>(browser.request(`${base}/api/me`, bearer(token)));
    assert.deepEqual(me, { status: 200, body: { id: provider.users.demo.sub } });
    const anonymous = await new TestBrowser().get(`${base}/api/me`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm=/);

    const signOut = await browser.request(`${base}/sign-out`, { method: 'POST', headers: { origin: base } });
    assert.equal(signOut.status, 302);
    assert.ok(signOut.location?.startsWith(`${provider.endpoint}/oidc/session/end`), signOut.location);
    const after = await browser.get(`${base}/profile`);
    assert.equal(after.location, `${base}/sign-in`, 'signed out');

    // A cancelled sign-in reaches Nest's exception filter as 401 authorization_failed.
    const visitor = new TestBrowser();
    const started = await visitor.get(`${base}/sign-in`);
    const cancelled = await visitor.get(await cancelAtProvider(visitor, started.location ?? '', `${base}/callback`));
    assert.equal(cancelled.status, 401);
    assert.equal((JSON.parse(cancelled.text) as { error: string }).error, 'authorization_failed');
  },

  // The README's short examples for the other hosts (its "Other hosts" section).
  async 'nestjs-app'() {
    const base = await loadNest('nestjs-app');
    const browser = new TestBrowser();
    // The guard turns a signed-out visit away, and the callback brings the user back to that page.
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`);
    assert.equal((await signIn(browser, base)).location, `${base}/profile`);
    const profile = await json<{ sub: string; username: string }>(browser.get(`${base}/profile`));
    assert.equal(profile.status, 200);
    assert.deepEqual([profile.body.sub, profile.body.username], [provider.users.demo.sub, 'demo']);

    const signOut = await browser.request(`${base}/sign-out`, { method: 'POST', headers: { origin: base } });
    assert.equal(signOut.status, 302);
    assert.ok(signOut.location?.startsWith(`${provider.endpoint}/oidc/session/end`), signOut.location);
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`, 'signed out');

    // A cancelled sign-in reaches Nest's exception filter as 401 authorization_failed.
    const visitor = new TestBrowser();
    const started = await visitor.get(`${base}/sign-in`);
    const cancelled = await visitor.get(await cancelAtProvider(visitor, started.location ?? '', `${base}/callback`));
    assert.equal(cancelled.status, 401);
    assert.equal((JSON.parse(cancelled.text) as { error: string }).error, 'authorization_failed');
  },

  async 'nestjs-fastify'() {
    // @fastify/session wants a secret of at least 32 characters.
    const base = await loadNest('nestjs-fastify', { SESSION_SECRET: 'a-session-secret-of-32-characters-or-more' });
    const browser = new TestBrowser();
    // The guard turns a signed-out visit away, and the callback brings the user back to that page.
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`);
    assert.equal((await signIn(browser, base)).location, `${base}/profile`);
    assert.ok(browser.cookie('127.0.0.1', 'sessionId'), "@fastify/session's cookie, sent over plain HTTP ('auto')");
    const profile = await json<{ sub: string; username: string }>(browser.get(`${base}/profile`));
    assert.equal(profile.status, 200);
    assert.deepEqual([profile.body.sub, profile.body.username], [provider.users.demo.sub, 'demo']);
    // Passport's session hook gives every route the user that validate() returned.
    assert.deepEqual(await json(browser.get(`${base}/`)), { status: 200, body: { user: { id: provider.users.demo.sub, name: 'Demo User' } } });
    // Signed in, the sign-in page's guard starts another sign-in; the callback with nothing kept goes to '/'.
    assert.equal((await signIn(browser, base)).location, `${base}/`);

    const signOut = await browser.request(`${base}/sign-out`, { method: 'POST', headers: { origin: base } });
    assert.equal(signOut.status, 302);
    assert.ok(signOut.location?.startsWith(`${provider.endpoint}/oidc/session/end`), signOut.location);
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`, 'signed out');
    assert.deepEqual(await json(browser.get(`${base}/`)), { status: 200, body: { user: null } });

    // A cancelled sign-in reaches Nest's exception filter as 401 authorization_failed.
    const visitor = new TestBrowser();
    const started = await visitor.get(`${base}/sign-in`);
    const cancelled = await visitor.get(await cancelAtProvider(visitor, started.location ?? '', `${base}/callback`));
    assert.equal(cancelled.status, 401);
    assert.equal((JSON.parse(cancelled.text) as { error: string }).error, 'authorization_failed');
  },

  async 'fastify-app'() {
    const { base, exports } = await load('fastify-app');
    cleanups.push(() => (exports.app as { close(): Promise<void> }).close());
    await hostSnippetFlow(base, ['session']);
  },

  async 'koa-app'() {
    await koaSnippetFlow('koa-app');
  },
};

// ---------------------------------------------------------------------------
// One test per snippet
// ---------------------------------------------------------------------------

describe('README.md and docs/*.md snippets', () => {
  for (const snippet of snippets) {
    describe(`${snippet.id} (${snippet.file} line ${snippet.line})`, () => {
      const typeCheckTest = async (ignoreKnownBug: boolean): Promise<void> => {
        assert.ok(!snippet.problem, snippet.problem);
        const program = programs.get(snippet.id);
        assert.ok(program);
        const errors = (await typeErrors)[program.file] ?? [];
        const known = ignoreKnownBug ? libTypeBugs[snippet.id]?.error : undefined;
        const own = errors.filter((error) => program.ownLines.has(error.line) && !(known && known.test(error.message)));
        const lines = program.source.split('\n');
        const described = own.map((error) => `line ${error.line} of its program: ${error.message}\n    > ${(lines[error.line - 1] ?? '').trim()}`);
        assert.ok(own.length === 0, `the snippet does not type-check with strict:\n${described.join('\n')}`);
      };

      test('runs, and does what the README says', async () => {
        assert.ok(!snippet.problem, snippet.problem);
        const exercise = exercises[snippet.id];
        assert.ok(exercise, `no exercise for snippet "${snippet.id}": add one to the exercises of test/readme-snippets.test.ts`);
        await exercise();
      });

      const bug = libTypeBugs[snippet.id];
      if (bug) {
        test('type-checks with strict, apart from a known lib/ bug', () => typeCheckTest(true));
        test('type-checks with strict', { todo: `lib/ bug: ${bug.bug}` }, () => typeCheckTest(false));
      } else {
        test('type-checks with strict', () => typeCheckTest(false));
      }
    });
  }

  test('a snippet that needs a package beyond the Quick start shows its install line before it', () => {
    const quickStart = new Set(['passport-logto', 'passport', 'express', 'express-session']);
    const missing: string[] = [];
    for (const snippet of snippets) {
      const packages = [...snippet.code.matchAll(/^import\b[^'"]*['"]([^'"./][^'"]*)['"]/gm)]
        .map((match) => (match[1] ?? '').split('/').slice(0, (match[1] ?? '').startsWith('@') ? 2 : 1).join('/'))
        .filter((name) => !name.startsWith('node:') && !quickStart.has(name));
      // The text between the previous snippet (or heading) and this one.
      const before = readFileSync(join(root, snippet.file), 'utf8').split('\n').slice(Math.max(0, snippet.line - 15), snippet.line - 1);
      const installed = new Set(before.filter((line) => line.startsWith('npm install ')).flatMap((line) => line.split(/\s+/).slice(2)));
      for (const name of packages) if (!installed.has(name)) missing.push(`${snippet.id} (${snippet.file} line ${snippet.line}) imports ${name}`);
    }
    assert.deepEqual(missing, [], 'each needs an `npm install <package>` line in a sh block just before it');
  });

  test('every exercise has its snippet in README.md or docs/*.md', () => {
    const ids = new Set(snippets.map((snippet) => snippet.id));
    assert.deepEqual(Object.keys(exercises).filter((id) => !ids.has(id)), []);
    assert.deepEqual(Object.keys(libTypeBugs).filter((id) => !ids.has(id)), []);
  });
});
