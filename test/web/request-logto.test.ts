/**
 * `req.logto` as a route sees it, on Express 5 and Express 4: the helper of the request the guard
 * admitted, nowhere else, in sub-apps too, and an app's own assignment kept.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { Express, Request, Response } from 'express';
import type { LogtoStrategy } from '../../lib/index.js';
import { startApp, type ExpressFlavor, type RunningApp } from '../support/app.js';
import { getJson, signIn } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';

const require = createRequire(import.meta.url);

interface Seen {
  present: boolean;
  same?: boolean;
  sub?: string;
}

function seen(req: Request, logto: LogtoStrategy): Seen {
  const helper = req.logto;
  if (helper === undefined) return { present: false };
  return { present: true, same: helper === logto.client(req), sub: helper.getIdTokenClaims().sub };
}

function routes(flavor: ExpressFlavor): (app: Express, logto: LogtoStrategy) => void {
  return (app, logto) => {
    app.get('/open', (req, res) => res.json(seen(req, logto)));
    app.get('/guarded', logto.authenticated(), (req, res) => res.json(seen(req, logto)));
    app.get('/assigned', (req, res, next) => {
      req.logto = logto.client(req);
      logto
        .client(req)
        .load()
        .then(() => res.json(seen(req, logto)), next);
    });
    // A sub-app whose guard lets the request on to the parent's route.
    const factory = require(flavor === 'express4' ? 'express4' : 'express') as () => Express;
    const subApp = factory();
    subApp.use(logto.authenticated());
    subApp.get('/inside', (req: Request, res: Response) => res.json(seen(req, logto)));
    app.use('/sub', subApp);
    app.get('/sub/after', (req, res) => res.json(seen(req, logto)));
  };
}

let provider: TestProvider;
before(async () => {
  provider = await startProvider();
});
after(async () => {
  await provider.close();
});

for (const flavor of ['express5', 'express4'] as const) {
  describe(`req.logto on ${flavor}`, () => {
    let running: RunningApp;
    before(async () => {
      running = await startApp(provider, { express: flavor, cookieName: `rl-${flavor}`, routes: routes(flavor) });
    });
    after(async () => {
      await running.close();
    });

    test('is the admitted request\'s helper behind the guard, in a sub-app and after it, and absent elsewhere', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      const sub = provider.users.demo.sub;
      const guarded = { present: true, same: true, sub };
      assert.deepEqual((await getJson<Seen>(browser, `${running.url}/guarded`)).body, guarded);
      assert.deepEqual((await getJson<Seen>(browser, `${running.url}/open`)).body, { present: false }, 'a route without the guard has none');
      assert.deepEqual((await getJson<Seen>(browser, `${running.url}/sub/inside`)).body, guarded);
      assert.deepEqual((await getJson<Seen>(browser, `${running.url}/sub/after`)).body, guarded, "the parent's route after the sub-app's guard");
      assert.deepEqual((await getJson<Seen>(new TestBrowser(), `${running.url}/open`)).body, { present: false });
      assert.equal((await new TestBrowser().get(`${running.url}/guarded`)).status, 401);
    });

    test("keeps the app's own assignment for that request only", async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      assert.deepEqual((await getJson<Seen>(browser, `${running.url}/assigned`)).body, { present: true, same: true, sub: provider.users.demo.sub });
      assert.deepEqual((await getJson<Seen>(browser, `${running.url}/open`)).body, { present: false });
    });
  });
}
