import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisStore } from 'connect-redis';
import { SharedRefreshCoordinator, UserScope } from '../lib/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { getJson, signIn, type HomeBody, type SessionBody } from './support/flows.js';
import { TestBrowser } from './support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from './support/provider.js';
import { redisCoordinationStore, startRedis, type RunningRedis } from './support/redis.js';

let redis: RunningRedis;
let provider: TestProvider;
let first: RunningApp;
let second: RunningApp;

const cookieName = 'shared-sid';

async function instance(instanceOf?: RunningApp): Promise<RunningApp> {
  const client = await redis.client();
  return startApp(provider, {
    store: new RedisStore({ client, prefix: 'sess:' }),
    cookieName,
    ...(instanceOf ? { instanceOf: instanceOf.registered } : {}),
    strategy: {
      scopes: [UserScope.Organizations, 'read:items', 'read:members'],
      resources: [API_RESOURCE],
      accessTokenExpiryMargin: 0,
      refreshCoordinator: new SharedRefreshCoordinator(redisCoordinationStore(client)),
    },
    routes: (express, logto) => {
      express.get('/token', (req, res, next) => {
        const { resource, org } = req.query as Record<string, string | undefined>;
        logto.client(req).getAccessToken(resource, org).then((token) => res.json({ token }), next);
      });
    },
  });
}

before(async () => {
  redis = await startRedis();
  // Tokens that live 5 s: long enough to stay valid through a burst on a busy machine.
  provider = await startProvider({ accessTokenTtl: 5 });
  first = await instance();
  second = await instance(first);
});
after(async () => {
  await first.close();
  await second.close();
  await provider.close();
  await redis.stop();
});

const expire = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5100));
const refreshTokensSent = (): string[] =>
  provider.requests.filter((r) => r.path === '/oidc/token' && r.params.grant_type === 'refresh_token').map((r) => r.params.refresh_token ?? '');

describe('two app instances sharing Redis', () => {
  test('sign in on one, use and refresh tokens on the other, sign out on either', async () => {
    const browser = new TestBrowser();
    await signIn(browser, provider, first);
    const there = (await getJson<HomeBody>(browser, `${second.url}/`)).body;
    assert.equal(there.user?.id, provider.users.demo.sub);
    assert.equal(there.authenticated, true);

    await expire();
    const token = await getJson<{ token: string }>(browser, `${second.url}/token?resource=${encodeURIComponent(API_RESOURCE)}`);
    assert.equal(token.status, 200);
    const rotated = (await getJson<SessionBody>(browser, `${first.url}/session`)).body.session.logto?.tokens?.refreshToken;
    const back = await getJson<{ token: string }>(browser, `${first.url}/token?resource=${encodeURIComponent(API_RESOURCE)}`);
    assert.equal(back.body.token, token.body.token, 'the first instance sees the token the second one got');
    assert.equal(typeof rotated, 'string');

    const signOut = await browser.get(`${second.url}/sign-out`);
    assert.equal(signOut.status, 302);
    assert.equal((await getJson<HomeBody>(browser, `${first.url}/`)).body.user, null);
  });

  test('concurrent requests across both instances never send a used refresh token again', async () => {
    const browser = new TestBrowser();
    await signIn(browser, provider, second);
    await expire();
    provider.resetRequests();
    const resource = encodeURIComponent(API_RESOURCE);
    const paths = [`/token?resource=${resource}`, '/token?org=org-acme', '/token'];
    const urls = Array.from({ length: 24 }, (_, i) => `${i % 2 === 0 ? first.url : second.url}${paths[i % 3] ?? ''}`);
    const results = await Promise.all(urls.map((url) => getJson<{ token?: string; error?: string }>(browser, url)));
    for (const result of results) assert.equal(result.status, 200, JSON.stringify(result.body));
    const sent = refreshTokensSent();
    assert.equal(sent.length, 3, 'one refresh per distinct token, across both instances');
    assert.equal(new Set(sent).size, 3, 'no refresh token was sent twice');

    // The grant survived: after Logto's reuse leeway, a further refresh still works.
    await new Promise((resolve) => setTimeout(resolve, 3200));
    await expire();
    const later = await getJson(browser, `${second.url}/token?resource=${resource}`);
    assert.equal(later.status, 200, JSON.stringify(later.body));
  });
});
