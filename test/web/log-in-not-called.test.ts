/**
 * A callback that ends without Passport's `req.logIn()` (a custom callback that only sets
 * `req.user`, as the plain AuthGuard of @nestjs/passport does) is never silent: the sign-in's
 * record is ended, since no session refers to it, and the developer is warned once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryTokenStore } from '../../lib/index.js';
import { startApp, type RunningApp } from '../support/app.js';
import { callbackAfterSignIn, getJson, type HomeBody } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';
import { captureWarnings } from '../support/warnings.js';

/** A real in-memory store that also tells which records were ended. */
class ObservedStore extends MemoryTokenStore {
  readonly ended: string[] = [];
  override set(key: string, value: string, ttl: number): Promise<void> {
    if (/"ended":\d+/.test(value)) this.ended.push(key);
    return super.set(key, value, ttl);
  }
}

// Expected here: captured for the whole file, kept out of the test output.
const { warnings } = captureWarnings(['PASSPORT_LOGTO_LOGIN_NOT_CALLED']);

let provider: TestProvider;
before(async () => {
  provider = await startProvider();
});
after(async () => {
  await provider.close();
});

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 50 && !check(); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(check(), `timed out waiting for ${what}`);
}

// First: the warning is once per process, so this must run before the test that causes it.
describe('a custom callback that logs the user in', () => {
  test('keeps the record and does not warn', async () => {
    const store = new ObservedStore();
    const app = await startApp(provider, {
      strategy: { tokenStore: store },
      routes: (express, logto, passport) => {
        express.get('/callback', (req, res, next) => {
          const authenticate = passport.authenticate(logto.name, (error: unknown, user: Express.User | false) => {
            if (error || !user) return next(error);
            req.logIn(user, (logInError) => (logInError ? next(logInError) : res.redirect('/')));
          }) as unknown as (req: unknown, res: unknown, next: unknown) => void;
          authenticate(req, res, next);
        });
      },
    });
    try {
      const warned = warnings.length;
      const browser = new TestBrowser();
      const callback = await callbackAfterSignIn(browser, provider, app);
      assert.equal((await browser.get(callback)).status, 302);
      assert.equal((await browser.get(`${app.url}/api/profile`)).status, 200);
      assert.deepEqual(store.ended, []);
      assert.equal(warnings.length, warned);
    } finally {
      await app.close();
    }
  });
});

describe('a callback whose response ends without Passport logIn', () => {
  let app: RunningApp;
  const store = new ObservedStore();
  before(async () => {
    app = await startApp(provider, {
      strategy: { tokenStore: store },
      routes: (express, logto, passport) => {
        // Only sets req.user and answers, as a guard that never calls logIn would.
        express.get('/callback', (req, res, next) => {
          const authenticate = passport.authenticate(logto.name, (error: unknown, user: { id: string } | false) => {
            if (error) return next(error);
            (req as { user?: unknown }).user = user;
            res.json({ user: user ? user.id : null });
          }) as unknown as (req: unknown, res: unknown, next: unknown) => void;
          authenticate(req, res, next);
        });
      },
    });
  });
  after(async () => {
    await app.close();
  });

  test('ends the sign-in record and warns once, naming what to add', async () => {
    for (const round of [1, 2]) {
      const browser = new TestBrowser();
      const callback = await callbackAfterSignIn(browser, provider, app);
      const endedBefore = store.ended.length;
      const answer = await browser.get(callback);
      assert.equal(answer.status, 200);
      assert.equal((JSON.parse(answer.text) as { user: string }).user, provider.users.demo.sub, 'the route saw the user');
      await eventually(() => store.ended.length > endedBefore, `round ${round}: the record to end`);
      assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.user, null, 'the session was never logged in');
      assert.equal((await browser.get(`${app.url}/api/profile`)).status, 401);
    }
    assert.equal(warnings.length, 1, 'warned once for the process');
    assert.match(warnings[0]?.message ?? '', /req\.logIn\(\)/);
    assert.match(warnings[0]?.message ?? '', /super\.logIn\(request\)/);
  });
});
