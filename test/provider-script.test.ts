/**
 * `npm run provider` as a developer uses it: started as its own process, then a small app that
 * is not part of this repository's code (real Express, express-session and Passport, and
 * passport-logto by its package name, i.e. the built dist/) signs in against it with the
 * printed settings, on a port and path the provider has never heard of.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import express from 'express';
import session from 'express-session';
import passport from 'passport';
import { LogtoStrategy, UserScope } from 'passport-logto';
import { endSessionAtProvider, parseForm, signInAtProvider, TestBrowser } from './support/http-client.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface PrintedSettings {
  LOGTO_ENDPOINT: string;
  LOGTO_APP_ID: string;
  LOGTO_APP_SECRET: string;
}

/** Starts `example/provider.ts` (what `npm run provider` runs) and reads the three variables it prints. */
async function startProviderScript(): Promise<{ child: ChildProcessWithoutNullStreams; output: () => string; settings: PrintedSettings; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'example/provider.ts'], {
    cwd: root,
    // A random port: 3001 may be taken on this machine.
    env: { ...process.env, PORT: '0' },
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const settings = await new Promise<PrintedSettings>((resolve, reject) => {
    // Only a guard against a hung child; no assertion depends on how long it takes.
    const timer = setTimeout(() => reject(new Error(`no settings printed within 30 s: ${output}`)), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const read = (name: string): string | undefined => new RegExp(`^  export ${name}=(\\S+)$`, 'm').exec(output)?.[1];
      const endpoint = read('LOGTO_ENDPOINT');
      const appId = read('LOGTO_APP_ID');
      const appSecret = read('LOGTO_APP_SECRET');
      if (endpoint && appId && appSecret && output.includes('Stop: Ctrl+C')) {
        clearTimeout(timer);
        resolve({ LOGTO_ENDPOINT: endpoint, LOGTO_APP_ID: appId, LOGTO_APP_SECRET: appSecret });
      }
    });
    void exited.then((code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
  return { child, output: () => output, settings, exited };
}

/** A developer's own app: nothing from this repository but the published package. */
async function startOwnApp(settings: PrintedSettings): Promise<{ url: string; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const logto = new LogtoStrategy({
    endpoint: settings.LOGTO_ENDPOINT,
    appId: settings.LOGTO_APP_ID,
    appSecret: settings.LOGTO_APP_SECRET,
    // Paths the provider was never told about.
    callbackURL: `${url}/auth/logto/done`,
    postLogoutRedirectUri: `${url}/bye`,
    scopes: [UserScope.Email, UserScope.Organizations, 'read:items'],
    resources: ['https://api.example.com'],
  });
  const authenticator = new passport.Passport();
  authenticator.use(logto);
  authenticator.serializeUser((user, done) => done(null, user));
  authenticator.deserializeUser((user: Express.User, done) => done(null, user));

  const app = express();
  app.use(session({ secret: 'own-app-test-secret', resave: false, saveUninitialized: false }));
  app.use(authenticator.initialize());
  app.use(authenticator.session());
  app.get('/login', authenticator.authenticate('logto'));
  app.get('/auth/logto/done', authenticator.authenticate('logto', { successReturnToOrRedirect: '/me', failureRedirect: '/login' }));
  app.get('/me', logto.authenticated({ redirect: '/login' }), async (req, res) => {
    res.json({
      user: req.user,
      claims: req.logto!.getIdTokenClaims(),
      api: await req.logto!.getAccessTokenClaims('https://api.example.com'),
      organization: await req.logto!.getOrganizationTokenClaims('org-acme'),
    });
  });
  app.get('/logout', logto.signOut());
  app.get('/bye', (_req, res) => {
    res.send('signed out');
  });
  server.on('request', app);
  return { url, server };
}

describe('npm run provider', () => {
  let script: Awaited<ReturnType<typeof startProviderScript>>;
  let ownApp: { url: string; server: Server };

  before(async () => {
    script = await startProviderScript();
    ownApp = await startOwnApp(script.settings);
  });
  after(async () => {
    await new Promise<void>((resolve) => {
      ownApp?.server.close(() => resolve());
      ownApp?.server.closeAllConnections();
    });
    script?.child.kill('SIGTERM');
  });

  test('prints a fixed app ID and secret, the endpoint, and the demo account', () => {
    const { settings } = script;
    assert.match(settings.LOGTO_ENDPOINT, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(settings.LOGTO_APP_ID, 'local-passport-logto-app');
    assert.equal(settings.LOGTO_APP_SECRET, 'local-secret-for-development-only');
    const output = script.output();
    // The fourth variable the Quick start needs: a random session secret.
    assert.match(output, /^  export SESSION_SECRET=[\w-]{32}$/m);
    assert.match(output, /Users: +demo \/ demo-password/);
    assert.match(output, /API resource: +https:\/\/api\.example\.com, permissions read:items write:items/);
    assert.match(output, /Organizations: +org-acme, org-globex/);
  });

  test('an app of your own signs in on any loopback port and path, gets its tokens, and signs out', async () => {
    const browser = new TestBrowser();
    const login = await browser.get(`${ownApp.url}/login`);
    assert.equal(login.status, 302);
    assert.ok(login.location?.startsWith(`${script.settings.LOGTO_ENDPOINT}/oidc/auth?`), login.location);

    // The provider's page names the app, as Logto does, rather than its client ID.
    const form = await browser.follow(login.location!);
    assert.match(form.response.text, /to continue to <strong id="app-name">Your app \(local Logto\)<\/strong>/);

    const callback = await signInAtProvider(browser, login.location!, { username: 'demo', password: 'demo-password' }, `${ownApp.url}/auth/logto/done`);
    const landed = await browser.get(callback);
    assert.equal(landed.location, `${ownApp.url}/me`);

    const me = await browser.get(`${ownApp.url}/me`);
    assert.equal(me.status, 200, me.text);
    const body = JSON.parse(me.text) as {
      user: { id: string; name: string };
      claims: { iss: string; aud: string; email: string };
      api: { aud: string; scope: string };
      organization: { aud: string };
    };
    assert.equal(body.user.id, 'demo00user01');
    assert.equal(body.user.name, 'Demo User');
    assert.equal(body.claims.iss, `${script.settings.LOGTO_ENDPOINT}/oidc`);
    assert.equal(body.claims.aud, 'local-passport-logto-app');
    assert.equal(body.claims.email, 'demo@example.com');
    assert.equal(body.api.aud, 'https://api.example.com');
    assert.equal(body.api.scope, 'read:items');
    assert.equal(body.organization.aud, 'urn:logto:organization:org-acme');

    // Sign-out comes back to a post-logout URI that was never registered either.
    const signOut = await browser.get(`${ownApp.url}/logout`);
    assert.equal(await endSessionAtProvider(browser, signOut.location!), `${ownApp.url}/bye`);
    assert.equal((await browser.get(`${ownApp.url}/me`)).location, `${ownApp.url}/login`);
  });

  test('accepts localhost and [::1] redirect URIs too, and refuses any other host', async () => {
    const authorize = (redirectUri: string): Promise<{ response: { status: number; text: string; url: string } }> => {
      const url = new URL(`${script.settings.LOGTO_ENDPOINT}/oidc/auth`);
      url.search = new URLSearchParams({
        client_id: script.settings.LOGTO_APP_ID,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: redirectUri,
        state: 'some-state',
      }).toString();
      return new TestBrowser().follow(url.href);
    };
    for (const redirectUri of ['http://localhost:4567/callback', 'http://[::1]:8080/any/path/you/like']) {
      const { response } = await authorize(redirectUri);
      assert.equal(response.status, 200, redirectUri);
      assert.ok(parseForm(response.text, response.url, 'login'), `${redirectUri}: the login form, got ${response.text.slice(0, 300)}`);
    }
    for (const redirectUri of ['http://example.com/callback', 'http://127.0.0.1.example.com/callback']) {
      const { response } = await authorize(redirectUri);
      assert.equal(response.status, 400, redirectUri);
      // As Logto: JSON with its code and message, even to a browser.
      const body = JSON.parse(response.text) as { error?: string; code?: string; message?: string };
      assert.deepEqual([body.error, body.code], ['invalid_redirect_uri', 'oidc.invalid_redirect_uri'], redirectUri);
      assert.match(body.message ?? '', /redirect_uri did not match/, redirectUri);
    }
  });

  test('stops on SIGTERM', async () => {
    script.child.kill('SIGTERM');
    assert.equal(await script.exited, 0, script.output());
  });
});
