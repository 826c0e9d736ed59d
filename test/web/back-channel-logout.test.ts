import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LogtoError, LogtoStrategy, type LogtoStrategyOptions } from '../../lib/index.js';
import { startApp, type RunningApp } from '../support/app.js';
import { getJson, signIn, type HomeBody } from '../support/flows.js';
import { endSessionAtProvider, TestBrowser } from '../support/http-client.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';

let provider: TestProvider;
/** Mounts the handler and leaves the option `backchannelLogout` unset: the deprecated way, which still works. */
let appWithLogout: RunningApp;
let otherApp: RunningApp;

/** Listened to before any strategy exists, so that every warning of this process is seen. */
const indexingWarnings: Error[] = [];
process.on('warning', (warning) => {
  if ((warning as Error & { code?: string }).code === 'PASSPORT_LOGTO_BACKCHANNEL_INDEXING') indexingWarnings.push(warning);
});

before(async () => {
  provider = await startProvider();
  appWithLogout = await startApp(provider, { backchannelLogout: true });
  otherApp = await startApp(provider);
});
after(async () => {
  await appWithLogout.close();
  await otherApp.close();
  await provider.close();
});

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const postLogoutToken = (token: string, app: RunningApp = appWithLogout): Promise<Response> =>
  fetch(`${app.url}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });

describe('back-channel logout', () => {
  test('signing out of Logto in another app ends the session here, through the session store', async () => {
    const browser = new TestBrowser();
    await signIn(browser, provider, appWithLogout);
    await signIn(browser, provider, otherApp); // single sign-on: the same Logto session
    const bystander = new TestBrowser();
    await signIn(bystander, provider, appWithLogout, '/sign-in', provider.users.alice);
    assert.equal((await getJson<HomeBody>(browser, `${appWithLogout.url}/`)).body.authenticated, true);

    const signOut = await browser.get(`${otherApp.url}/sign-out`);
    await endSessionAtProvider(browser, signOut.location ?? '');

    await eventually(async () => (await getJson<HomeBody>(browser, `${appWithLogout.url}/`)).body.user === null, 'the session to end');
    assert.equal((await browser.get(`${appWithLogout.url}/api/profile`)).status, 401);
    assert.equal(provider.countRequests('/backchannel-logout'), 0, 'the logout token goes to the app, not the provider');
    const other = (await getJson<HomeBody>(bystander, `${appWithLogout.url}/`)).body;
    assert.equal(other.user?.id, provider.users.alice.sub, 'other users stay signed in');
  });

  test('a valid logout token is accepted once; a replay and forged tokens get 400', async () => {
    const browser = new TestBrowser();
    await signIn(browser, provider, appWithLogout, '/sign-in', provider.users.alice);
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: provider.issuer,
      aud: appWithLogout.logto.config.appId,
      iat: now,
      exp: now + 120,
      jti: `jti-${now}-${Math.random()}`,
      sub: provider.users.alice.sub,
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    };
    const valid = await provider.sign(claims, { typ: 'logout+jwt' });
    assert.equal((await postLogoutToken(valid)).status, 200);
    assert.equal((await getJson<HomeBody>(browser, `${appWithLogout.url}/`)).body.user, null, 'sessions of that user ended');
    const replay = await postLogoutToken(valid);
    assert.equal(replay.status, 400);
    assert.match(((await replay.json()) as { error_description: string }).error_description, /already used/);

    const forged: Array<[string, Record<string, unknown>]> = [
      ['no event', { ...claims, jti: 'a1', events: {} }],
      ['a nonce', { ...claims, jti: 'a2', nonce: 'n' }],
      ['neither sid nor sub', { ...claims, jti: 'a3', sub: undefined }],
      ['another audience', { ...claims, jti: 'a4', aud: 'another-app' }],
      ['no jti', { ...claims, jti: undefined }],
      ['expired', { ...claims, jti: 'a5', iat: now - 7200, exp: now - 3600 }],
    ];
    for (const [name, payload] of forged) {
      const response = await postLogoutToken(await provider.sign(JSON.parse(JSON.stringify(payload)) as Record<string, unknown>));
      assert.equal(response.status, 400, name);
    }
    assert.equal((await postLogoutToken('not-a-jwt')).status, 400);
    const noToken = await fetch(`${appWithLogout.url}/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    assert.equal(noToken.status, 400);
  });

  test('with `backchannelLogout: true`, a sign-in on an instance that never mounted the handler is ended by one that did', async () => {
    const handling = await startApp(provider, { backchannelLogout: true, strategy: { backchannelLogout: true } });
    // Another instance of the same app, sharing the session store (and so the token store), without the handler.
    const serving = await startApp(provider, { instanceOf: handling.registered, store: handling.store, strategy: { backchannelLogout: true } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, serving, '/sign-in', provider.users.alice);
      assert.equal((await getJson<HomeBody>(browser, `${serving.url}/`)).body.authenticated, true);
      const now = Math.floor(Date.now() / 1000);
      const token = await provider.sign(
        {
          iss: provider.issuer,
          aud: handling.registered.appId,
          iat: now,
          exp: now + 120,
          jti: `jti-indexed-${now}-${Math.random()}`,
          sub: provider.users.alice.sub,
          events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
        },
        { typ: 'logout+jwt' },
      );
      assert.equal((await postLogoutToken(token, handling)).status, 200);
      const home = (await getJson<HomeBody>(browser, `${serving.url}/`)).body;
      assert.equal(home.user, null, 'the serving instance indexed the sign-in from the start');
      assert.equal(home.authenticated, false);
    } finally {
      await serving.close();
      await handling.close();
    }
  });

  const strategyOptions = (): LogtoStrategyOptions => ({
    endpoint: provider.endpoint,
    appId: 'indexing-app',
    appSecret: 'indexing-secret',
    callbackURL: 'http://127.0.0.1:3000/callback',
  });

  test('left unset, mounting the handler turns indexing on (as the first test shows) and warns once per process', async () => {
    const strategy = new LogtoStrategy(strategyOptions());
    strategy.backchannelLogout();
    strategy.backchannelLogout();
    new LogtoStrategy(strategyOptions()).backchannelLogout();
    new LogtoStrategy({ ...strategyOptions(), backchannelLogout: true }).backchannelLogout();
    // process.emitWarning delivers on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(indexingWarnings.length, 1, 'one warning, from appWithLogout, for every mount without the option');
    assert.equal(indexingWarnings[0]?.name, 'DeprecationWarning');
    assert.match(indexingWarnings[0]?.message ?? '', /backchannelLogout: true/);
  });

  test('with `backchannelLogout: false`, mounting the handler throws invalid_config', () => {
    const strategy = new LogtoStrategy({ ...strategyOptions(), backchannelLogout: false });
    assert.throws(
      () => strategy.backchannelLogout(),
      (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && /backchannelLogout: true/.test(error.message),
    );
    assert.throws(
      () => new LogtoStrategy({ ...strategyOptions(), backchannelLogout: 'yes' as unknown as boolean }),
      (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && /backchannelLogout/.test(error.message),
    );
  });
});
