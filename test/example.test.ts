import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readConfig, startExample, type RunningExample } from '../example/start.js';
import { claimsTable, html } from '../example/views.js';
import { cancelAtProvider, endSessionAtProvider, parseForm, signInAtProvider, TestBrowser, type TestResponse } from './support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from './support/provider/index.js';

const demo = { sub: 'demo00user01', username: 'demo', password: 'demo-password' };

// ---------------------------------------------------------------------------
// Reading the example's pages
// ---------------------------------------------------------------------------

function decode(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** The text of the claims-table cell for `claim` (without the readable-time note). */
function claim(page: string, name: string): string | undefined {
  const row = new RegExp(`<tr data-claim="${name}"><th>[^<]*</th><td>([\\s\\S]*?)</td></tr>`).exec(page);
  if (!row?.[1]) return undefined;
  return decode(row[1].replace(/<span class="when">[\s\S]*?<\/span>/g, '').replace(/<[^>]+>/g, ''));
}

/** The HTML of the card for one organization. */
function organizationCard(page: string, id: string): string {
  const start = page.indexOf(`data-organization="${id}"`);
  assert.ok(start >= 0, `no card for ${id} in ${page}`);
  return page.slice(start, page.indexOf('</section>', start));
}

function text(page: string): string {
  return decode(page.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' '));
}

// ---------------------------------------------------------------------------
// Flows
// ---------------------------------------------------------------------------

class Visitor {
  readonly browser = new TestBrowser();
  constructor(readonly example: RunningExample) {}

  get(path: string): Promise<TestResponse> {
    return this.browser.get(`${this.example.url}${path}`);
  }

  /** What the page's "Sign out" form does: a POST from the app's own origin. */
  signOut(): Promise<TestResponse> {
    return this.browser.request(`${this.example.url}/sign-out`, { method: 'POST', form: {}, headers: { origin: this.example.url } });
  }

  /** A page that must answer 200 with HTML. */
  async page(path: string): Promise<string> {
    const response = await this.get(path);
    assert.equal(response.status, 200, `${path}: ${response.status} ${text(response.text).slice(0, 300)}`);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    return response.text;
  }

  /** Signs in from `path` (a link or a protected page); returns where the callback sends the browser. */
  async signIn(path = '/sign-in'): Promise<string> {
    const start = await this.get(path);
    assert.equal(start.status, 302, `${path} redirects`);
    let authorization = start.location!;
    if (authorization.startsWith(this.example.url)) {
      // A protected page: first to /sign-in, then to Logto.
      assert.equal(authorization, `${this.example.url}/sign-in`);
      authorization = (await this.browser.get(authorization)).location!;
    }
    assert.ok(authorization.startsWith(`${this.example.endpoint}/oidc/auth?`), authorization);
    const callback = await signInAtProvider(this.browser, authorization, demo, `${this.example.url}/callback`);
    const landed = await this.browser.get(callback);
    assert.equal(landed.status, 302, `callback: ${landed.status} ${text(landed.text).slice(0, 300)}`);
    return landed.location!;
  }
}

describe('the example against the bundled provider', () => {
  let example: RunningExample;

  before(async () => {
    example = await startExample({ port: 0, baseUrl: undefined, logto: { kind: 'bundled', port: 0 }, sessionSecret: undefined });
  });
  after(() => example.close());

  test('home offers sign-in, sign-up and the demo account; protected pages send visitors to sign-in', async () => {
    const visitor = new Visitor(example);
    const home = await visitor.page('/');
    assert.match(home, /<a class="button" id="sign-in" href="\/sign-in">Sign in<\/a>/);
    assert.match(home, /id="sign-up" href="\/sign-up"/);
    assert.match(text(home), /username demo , password demo-password/);
    assert.doesNotMatch(home, /action="\/sign-out"/);
    for (const path of ['/protected', '/protected/userinfo', '/protected/api', '/protected/organizations', '/protected/organizations/org-acme']) {
      const response = await visitor.get(path);
      assert.equal(response.status, 302, path);
      assert.equal(response.location, `${example.url}/sign-in`, path);
    }
  });

  test('sign-up opens Logto on the register screen; sign-in does not', async () => {
    const visitor = new Visitor(example);
    const signUp = new URL((await visitor.get('/sign-up')).location!);
    assert.equal(signUp.searchParams.get('first_screen'), 'register');
    assert.equal(signUp.searchParams.get('redirect_uri'), `${example.url}/callback`);
    const signIn = new URL((await visitor.get('/sign-in')).location!);
    assert.equal(signIn.searchParams.get('first_screen'), null);
    assert.deepEqual(signIn.searchParams.getAll('resource'), [API_RESOURCE, 'urn:logto:resource:organizations']);
    assert.ok(signIn.searchParams.get('scope')?.split(' ').includes('read:items'));
  });

  test('signed in, each page shows its Logto data; after sign-out the pages are closed again', async () => {
    const visitor = new Visitor(example);
    assert.equal(await visitor.signIn(), `${example.url}/`);

    const home = await visitor.page('/');
    assert.match(home, /Hello, <span id="user-name">Demo User<\/span>/);
    // Sign out is a form that POSTs, never a GET link.
    assert.match(home, /<form method="post" action="\/sign-out"><button type="submit" id="sign-out" class="link">Sign out<\/button><\/form>/);
    assert.doesNotMatch(home, /href="\/sign-out"/);
    assert.equal((await visitor.get('/sign-out')).status, 404, 'no GET route signs out');
    assert.doesNotMatch(home, /id="sign-in"/);

    const idToken = await visitor.page('/protected');
    assert.equal(claim(idToken, 'sub'), demo.sub);
    assert.equal(claim(idToken, 'iss'), `${example.endpoint}/oidc`);
    assert.equal(claim(idToken, 'email'), 'demo@example.com');
    assert.equal(claim(idToken, 'organizations'), '["org-acme"]');
    assert.match(idToken, /<tr data-claim="exp"><th>exp<\/th><td>\d+<span class="when">20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC<\/span>/);
    assert.equal(claim(idToken, 'custom_data'), undefined, 'custom data comes from userinfo only');

    const userInfo = await visitor.page('/protected/userinfo');
    assert.match(userInfo, /<dt>plan<\/dt><dd data-custom="plan">pro<\/dd>/);
    assert.equal(claim(userInfo, 'sub'), demo.sub);
    assert.equal(claim(userInfo, 'custom_data'), '{"plan":"pro"}');
    assert.match(claim(userInfo, 'organization_data') ?? '', /"id":"org-acme","name":"Acme"/);

    const api = await visitor.page('/protected/api');
    assert.match(api, /<code id="resource">https:\/\/api\.example\.com<\/code>/);
    assert.equal(claim(api, 'aud'), API_RESOURCE);
    assert.equal(claim(api, 'sub'), demo.sub);
    assert.equal(claim(api, 'scope'), 'read:items');
    assert.match(api, /<span id="scopes"><span class="tag">read:items<\/span><\/span>/);

    const organizations = await visitor.page('/protected/organizations');
    assert.match(organizations, /userinfo's <code>organization_data<\/code>/);
    const acme = organizationCard(organizations, 'org-acme');
    assert.match(acme, /Acme <span class="muted">\(org-acme\)<\/span>/);
    assert.match(acme, /Acme Corporation, the organization demo belongs to/);
    assert.equal(claim(acme, 'aud'), 'urn:logto:organization:org-acme');
    assert.equal(claim(acme, 'scope'), 'read:members');
    assert.doesNotMatch(organizations, /data-organization="org-globex"/, 'only the user\'s organizations are listed');

    // Tokens live in the token store, not the session: no page says otherwise.
    for (const page of [idToken, await visitor.page('/protected/refresh')]) assert.doesNotMatch(text(page), /in the session/);

    // The organization switcher: in the navigation, a labelled choice of the user's organizations.
    assert.match(home, /<a href="\/protected\/organization-switcher">Switch organization<\/a>/);
    const switcher = await visitor.page('/protected/organization-switcher');
    assert.match(switcher, /<a href="\/protected\/organization-switcher" aria-current="page">Switch organization<\/a>/);
    assert.match(switcher, /<fieldset>\s*<legend>Work in<\/legend>/);
    assert.match(
      switcher,
      /<li data-switch="org-acme">\s*<label><input type="radio" name="organization" value="org-acme">\s*<strong>Acme<\/strong> <span class="muted">\(org-acme\)<\/span>\s*<span class="tag">member<\/span><\/label>/,
    );
    assert.match(switcher, /<button class="button" type="submit" id="switch">Switch organization<\/button>/);
    assert.match(switcher, /id="no-current"/);
    const switched = await visitor.browser.request(`${example.url}/protected/organization-switcher`, { method: 'POST', form: { organization: 'org-acme' } });
    assert.equal(switched.location, `${example.url}/protected/organization-switcher`);
    const working = await visitor.page('/protected/organization-switcher');
    assert.match(working, /value="org-acme" checked>/);
    assert.match(working, /Working in <span id="current-name">Acme<\/span>/);
    assert.equal(claim(working, 'aud'), 'urn:logto:organization:org-acme');

    const acmePage = await visitor.page('/protected/organizations/org-acme');
    assert.equal(claim(acmePage, 'aud'), 'urn:logto:organization:org-acme');
    assert.match(acmePage, /Your roles: <span class="tag">member<\/span>/);

    // Sign out: the app sends the browser to Logto's end-session endpoint, which comes back home.
    const signOut = await visitor.signOut();
    assert.equal(signOut.status, 302);
    const endSession = new URL(signOut.location!);
    assert.equal(`${endSession.origin}${endSession.pathname}`, `${example.endpoint}/oidc/session/end`);
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${example.url}/`);
    assert.equal(await endSessionAtProvider(visitor.browser, signOut.location!), `${example.url}/`);

    const after = await visitor.page('/');
    assert.match(after, /id="sign-in" href="\/sign-in"/);
    assert.doesNotMatch(after, /Demo User/);
    const closed = await visitor.get('/protected');
    assert.equal(closed.status, 302);
    assert.equal(closed.location, `${example.url}/sign-in`);
    // The Logto session ended too: signing in again shows the login form.
    const login = await visitor.browser.follow(`${example.url}/sign-in`);
    assert.match(login.response.text, /<form id="login"/);
  });

  test('signing in from a protected page lands back on it', async () => {
    const visitor = new Visitor(example);
    assert.equal(await visitor.signIn('/protected/api'), `${example.url}/protected/api`);
    assert.equal(claim(await visitor.page('/protected/api'), 'aud'), API_RESOURCE);
  });

  test('replaying the callback URL while signed in goes to the return page, still signed in', async () => {
    const visitor = new Visitor(example);
    const start = await visitor.get('/protected');
    const authorization = (await visitor.browser.get(start.location ?? '')).location ?? '';
    const callback = await signInAtProvider(visitor.browser, authorization, demo, `${example.url}/callback`);
    assert.equal((await visitor.browser.get(callback)).location, `${example.url}/protected`);
    // Reload, or the back button onto the callback: no "Sign-in failed" page.
    const replay = await visitor.browser.get(callback);
    assert.equal(replay.status, 302, text(replay.text).slice(0, 300));
    assert.equal(replay.location, `${example.url}/protected`);
    assert.match(text(await visitor.page('/protected')), /demo/);
  });

  test('an organization the user is not a member of gets a clear 403 page, not a 500', async () => {
    const visitor = new Visitor(example);
    await visitor.signIn();
    const globex = await visitor.get('/protected/organizations/org-globex');
    assert.equal(globex.status, 403);
    assert.match(globex.text, /<h1>Not a member of this organization<\/h1>/);
    assert.match(text(globex.text), /You are not a member of the organization "org-globex", so Logto will not issue a token for it\./);
    assert.match(globex.text, /href="\/protected\/organizations">Your organizations/);

    // The lookup form goes to the organization's page; an ID with markup is shown escaped.
    const lookup = await visitor.get(`/protected/organizations?id=${encodeURIComponent('<b>x</b>')}`);
    assert.equal(lookup.status, 302);
    assert.equal(lookup.location, `${example.url}/protected/organizations/%3Cb%3Ex%3C%2Fb%3E`);
    const escaped = await visitor.browser.get(lookup.location!);
    assert.equal(escaped.status, 403);
    assert.match(escaped.text, /organization &quot;&lt;b&gt;x&lt;\/b&gt;&quot;/);
    assert.doesNotMatch(escaped.text, /<b>x<\/b>/);

    // The refused request did not spoil the sign-in.
    assert.equal(claim(await visitor.page('/protected/organizations/org-acme'), 'aud'), 'urn:logto:organization:org-acme');
  });

  test('a cancelled sign-in says the user cancelled and offers to sign in again', async () => {
    const visitor = new Visitor(example);
    const authorization = (await visitor.get('/sign-in')).location!;
    const callback = await cancelAtProvider(visitor.browser, authorization, `${example.url}/callback`);
    assert.equal(new URL(callback).searchParams.get('error'), 'access_denied');
    const back = await visitor.browser.get(callback);
    assert.equal(back.location, `${example.url}/sign-in-failed`);
    const cancelled = await visitor.page('/sign-in-failed');
    assert.match(cancelled, /<h1>Sign-in cancelled<\/h1>/);
    assert.match(text(cancelled), /You cancelled the sign-in at Logto, so you are not signed in\./);
    assert.doesNotMatch(text(cancelled), /aborted|failed/i);
    assert.match(cancelled, /id="sign-in-again" href="\/sign-in">Sign in again/);
    // Shown once: the page does not claim a cancel it no longer knows about.
    const again = await visitor.get('/sign-in-failed');
    assert.equal(again.status, 401);
    assert.match(again.text, /<h1>Sign-in failed<\/h1>/);
    // Signing in again works from there.
    assert.equal(await visitor.signIn(), `${example.url}/`);
  });

  test('a failure that is not a cancel still says the sign-in failed', async () => {
    const visitor = new Visitor(example);
    const authorization = new URL((await visitor.get('/sign-in')).location!);
    // Logto's answer for a broken request, with this sign-in's state and issuer.
    const callback = new URL(`${example.url}/callback`);
    callback.search = new URLSearchParams({
      error: 'invalid_request',
      error_description: 'something was wrong with the request',
      state: authorization.searchParams.get('state')!,
      iss: `${example.endpoint}/oidc`,
    }).toString();
    assert.equal((await visitor.browser.get(callback.href)).location, `${example.url}/sign-in-failed`);
    const failed = await visitor.get('/sign-in-failed');
    assert.equal(failed.status, 401);
    assert.match(failed.text, /<h1>Sign-in failed<\/h1>/);
    assert.match(text(failed.text), /invalid_request/);
    assert.match(failed.text, /href="\/sign-in">Try again/);
  });

  test('the provider names the app; its register screen creates a user who lands signed in', async () => {
    const visitor = new Visitor(example);
    const signIn = await visitor.browser.follow(`${example.url}/sign-in`);
    assert.match(signIn.response.text, /to continue to <strong id="app-name">passport-logto example<\/strong>/);

    const register = await visitor.browser.follow(`${example.url}/sign-up`);
    assert.match(register.response.text, /<h1>Create account<\/h1>/);
    assert.match(register.response.text, /to continue to <strong id="app-name">passport-logto example<\/strong>/);
    const form = parseForm(register.response.text, register.response.url, 'register');
    assert.ok(form, 'a register form');

    // Mistakes come back on the same screen, with the username kept.
    const taken = await visitor.browser.post(form.action, { username: 'demo', password: 'long-enough-1', confirmPassword: 'long-enough-1' });
    assert.equal(taken.status, 200);
    assert.match(text(taken.text), /This username is already in use\./);
    const mismatch = await visitor.browser.post(form.action, { username: 'newcomer_http', password: 'long-enough-1', confirmPassword: 'long-enough-2' });
    assert.match(text(mismatch.text), /The passwords do not match\./);
    assert.match(mismatch.text, /name="username"[^>]*value="newcomer_http"/);

    const created = await visitor.browser.post(form.action, { username: 'newcomer_http', password: 'long-enough-1', confirmPassword: 'long-enough-1' });
    assert.ok(created.location, `registered: ${text(created.text).slice(0, 300)}`);
    const { chain } = await visitor.browser.follow(created.location, { stopAt: (url) => url.startsWith(`${example.url}/callback`) });
    const landed = await visitor.browser.get(chain.at(-1)!);
    assert.equal(landed.location, `${example.url}/`);
    assert.match(await visitor.page('/'), /Hello, <span id="user-name">newcomer_http<\/span>/);
    assert.equal(claim(await visitor.page('/protected'), 'username'), 'newcomer_http');

    // The new account signs in with its password afterwards, like the seeded ones.
    await endSessionAtProvider(visitor.browser, (await visitor.signOut()).location!);
    const again = new Visitor(example);
    const authorization = (await again.get('/sign-in')).location!;
    const callback = await signInAtProvider(again.browser, authorization, { username: 'newcomer_http', password: 'long-enough-1' }, `${example.url}/callback`);
    assert.equal((await again.browser.get(callback)).location, `${example.url}/`);
  });

  test('submitting the provider form again after signing in gives a page that leads back to the app', async () => {
    const visitor = new Visitor(example);
    const opened = await visitor.browser.follow(`${example.url}/sign-in`);
    const form = parseForm(opened.response.text, opened.response.url, 'login');
    assert.ok(form, 'the login form');
    const submitted = await visitor.browser.post(form.action, { username: demo.username, password: demo.password });
    const { chain } = await visitor.browser.follow(submitted.location!, { stopAt: (url) => url.startsWith(`${example.url}/callback`) });
    assert.equal((await visitor.browser.get(chain.at(-1)!)).location, `${example.url}/`);

    // What the back button and a second press of "Sign in" do: the same form, once more.
    const stale = await visitor.browser.post(form.action, { username: demo.username, password: demo.password });
    assert.equal(stale.status, 400);
    assert.match(stale.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(stale.text, /<h1>This sign-in has ended<\/h1>/);
    assert.match(stale.text, new RegExp(`<a id="back-to-app" class="button" href="${example.url}/">Back to passport-logto example</a>`));
    // The link leads to the app, where the person is signed in.
    assert.match(await visitor.page('/'), /Hello, <span id="user-name">Demo User<\/span>/);
  });

  test('the refresh page gets new tokens from Logto and shows what changed', async () => {
    const visitor = new Visitor(example);
    await visitor.signIn();
    const before = await visitor.page('/protected/refresh');
    assert.match(before, /<form method="post" action="\/protected\/refresh">/);
    assert.equal(claim(before, 'name'), 'Demo User');

    // The user's name changes in Logto (as in the Console) after the sign-in.
    const demoUser = example.provider!.users.demo;
    demoUser.claims.name = 'Demo Renamed';
    let refreshed: TestResponse;
    try {
      refreshed = await visitor.browser.post(`${example.url}/protected/refresh`, {});
    } finally {
      demoUser.claims.name = demoUser.name;
    }
    assert.equal(refreshed.status, 200, text(refreshed.text).slice(0, 300));
    assert.match(refreshed.text, /id="refreshed"/);
    assert.match(refreshed.text, /<span id="changed">[^]*<span class="tag">name<\/span>/);
    assert.equal(claim(refreshed.text, 'name'), 'Demo Renamed');
    // The sign-in keeps the new ID token: the next page shows it.
    assert.equal(claim(await visitor.page('/protected'), 'name'), 'Demo Renamed');
  });

  test('an organization-scoped API token carries the organization and the scopes of the user\'s role there', async () => {
    const visitor = new Visitor(example);
    await visitor.signIn();
    assert.match(await visitor.page('/protected/organizations/org-acme'), /id="organization-api" href="\/protected\/organizations\/org-acme\/api"/);
    const token = await visitor.page('/protected/organizations/org-acme/api');
    assert.match(token, /<h1>API token for organization org-acme<\/h1>/);
    assert.equal(claim(token, 'aud'), API_RESOURCE);
    assert.equal(claim(token, 'organization_id'), 'org-acme');
    assert.equal(claim(token, 'sub'), demo.sub);
    // demo is a "member" of Acme, which grants read:items only.
    assert.equal(claim(token, 'scope'), 'read:items');

    const globex = await visitor.get('/protected/organizations/org-globex/api');
    assert.equal(globex.status, 403);
    assert.match(globex.text, /<h1>Not a member of this organization<\/h1>/);
  });

  test('a visit to localhost moves to 127.0.0.1, where the session cookie and the redirect URIs are', async () => {
    const port = new URL(example.url).port;
    const response = await new TestBrowser().get(`http://localhost:${port}/protected?x=1`);
    assert.equal(response.status, 302);
    assert.equal(response.location, `${example.url}/protected?x=1`);
  });

  test('an unknown page is a 404 page', async () => {
    const response = await new Visitor(example).get('/nowhere');
    assert.equal(response.status, 404);
    assert.match(response.text, /<h1>Page not found<\/h1>/);
  });
});

describe('the example against a Logto tenant', () => {
  let provider: TestProvider;
  let example: RunningExample;

  before(async () => {
    // The bundled provider stands in for the tenant: the example only sees an endpoint and an app.
    provider = await startProvider();
    const app = await provider.registerApp({ redirectUris: [] });
    const config = readConfig({
      PORT: '0',
      LOGTO_ENDPOINT: provider.endpoint,
      LOGTO_APP_ID: app.appId,
      LOGTO_APP_SECRET: app.appSecret,
      LOGTO_RESOURCE: API_RESOURCE,
      LOGTO_SCOPES: 'read:items write:items',
    });
    example = await startExample(config);
    await provider.addRedirectUris(app.appId, [`${example.url}/callback`], [`${example.url}/`]);
  });
  after(async () => {
    await example.close();
    await provider.close();
  });

  test('signs in and gets the API token with the scopes from LOGTO_SCOPES', async () => {
    const visitor = new Visitor(example);
    assert.equal(example.demoAccount, undefined);
    assert.doesNotMatch(await visitor.page('/'), /demo-account/);
    await visitor.signIn();
    const api = await visitor.page('/protected/api');
    assert.equal(claim(api, 'aud'), API_RESOURCE);
    assert.equal(claim(api, 'scope'), 'read:items write:items');
    assert.equal(claim(await visitor.page('/protected'), 'sub'), demo.sub);
  });
});

describe('reading the environment', () => {
  test('no Logto settings: the bundled provider on 3001, the app on 3000', () => {
    assert.deepEqual(readConfig({}), { port: 3000, baseUrl: undefined, logto: { kind: 'bundled', port: 3001 }, sessionSecret: undefined });
    assert.deepEqual(readConfig({ PORT: '8080', PROVIDER_PORT: '9090', LOGTO_ENDPOINT: '' }).logto, { kind: 'bundled', port: 9090 });
  });

  test('a tenant, with an optional resource, scopes and base URL', () => {
    const config = readConfig({
      LOGTO_ENDPOINT: 'https://tenant.logto.app',
      LOGTO_APP_ID: 'app',
      LOGTO_APP_SECRET: 'secret',
      LOGTO_RESOURCE: 'https://api.tenant.test',
      LOGTO_SCOPES: 'read:items, read:members',
      BASE_URL: 'http://localhost:3000/',
    });
    assert.deepEqual(config.logto, {
      kind: 'tenant',
      endpoint: 'https://tenant.logto.app',
      appId: 'app',
      appSecret: 'secret',
      resource: 'https://api.tenant.test',
      scopes: ['read:items', 'read:members'],
    });
    assert.equal(config.baseUrl, 'http://localhost:3000');
  });

  test('half a tenant configuration or a bad port is refused with a message that names the variable', () => {
    assert.throws(() => readConfig({ LOGTO_ENDPOINT: 'https://tenant.logto.app' }), /LOGTO_APP_ID, LOGTO_APP_SECRET are missing/);
    assert.throws(() => readConfig({ PORT: 'http' }), /PORT must be a port number/);
    assert.throws(() => readConfig({ PROVIDER_PORT: '70000' }), /PROVIDER_PORT must be a port number/);
    assert.throws(() => readConfig({ BASE_URL: 'localhost:3000' }), /BASE_URL must be an origin/);
  });
});

describe('the views', () => {
  test('escape every value, in text and in attributes', () => {
    const table = claimsTable({ '"><script>': '<img src=x onerror=alert(1)>', name: "O'Brien & Co" }).markup;
    assert.doesNotMatch(table, /<script>|<img/);
    assert.match(table, /data-claim="&quot;&gt;&lt;script&gt;"/);
    assert.match(table, /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match(table, /O&#39;Brien &amp; Co/);
    assert.equal(html`<p>${['<a>', html`<b>${'&'}</b>`]}</p>`.markup, '<p>&lt;a&gt;<b>&amp;</b></p>');
  });
});

describe('npm run example', () => {
  test('starts both servers, prints the URL and the demo account, and stops on SIGTERM', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', 'example/main.ts'], {
      cwd: root,
      // Random ports: the defaults may be taken on this machine.
      env: { ...process.env, PORT: '0', PROVIDER_PORT: '0', LOGTO_ENDPOINT: '', LOGTO_APP_ID: '', LOGTO_APP_SECRET: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed within 15 s: ${output}`)), 15_000);
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /Open: +(http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
        void exited.then((code) => reject(new Error(`exited with ${code}: ${output}`)));
      });
      assert.match(output, /Sign in: +username demo, password demo-password/);
      assert.match(output, /bundled test provider at http:\/\/127\.0\.0\.1:\d+/);
      const home = await fetch(url);
      assert.equal(home.status, 200);
      assert.match(await home.text(), /id="sign-in" href="\/sign-in"/);
      // The sign-in link leads to the bundled provider, which knows the app's redirect URI.
      const signIn = await new TestBrowser().follow(`${url}/sign-in`);
      assert.match(signIn.response.text, /<form id="login"/);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, output);
  });

  test('a half-configured tenant stops it with a message', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', 'example/main.ts'], {
      cwd: root,
      env: { ...process.env, PORT: '0', LOGTO_ENDPOINT: 'https://tenant.logto.app', LOGTO_APP_ID: '', LOGTO_APP_SECRET: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
    assert.equal(code, 1);
    assert.match(stderr, /The example could not start: To use a Logto tenant, set LOGTO_ENDPOINT, LOGTO_APP_ID, LOGTO_APP_SECRET; LOGTO_APP_ID, LOGTO_APP_SECRET are missing\./);
  });
});
