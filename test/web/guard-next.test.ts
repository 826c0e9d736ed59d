/**
 * No guard lets a request through that it did not admit, whatever the host's `next` does with an
 * error: here a host that calls the next handler with or without one (as Koa does with a bridged
 * Express middleware), while the token store is down.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Express, RequestHandler } from 'express';
import { MemoryTokenStore, type LogtoStrategy } from '../../lib/index.js';
import { startApp, type RunningApp } from '../support/app.js';
import { signIn } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';

/** A real in-memory store that can be made to fail, as a Redis that went away. */
class FlakyStore extends MemoryTokenStore {
  down = false;
  override get(key: string): Promise<string | undefined> {
    return this.down ? Promise.reject(new Error('store unreachable')) : super.get(key);
  }
}

let provider: TestProvider;
let app: RunningApp;
/** A second instance of the app: it has read no record yet, so it asks the store. */
let other: RunningApp;
const store = new FlakyStore();
let handlerRuns = 0;

const routes = (express: Express, logto: LogtoStrategy): void => {
  const [guard, handler] = logto.authenticated({}, (_req, res) => {
    handlerRuns += 1;
    res.json({ ran: true });
  }) as [RequestHandler, RequestHandler];
  // A host that ignores the argument of `next`.
  express.get('/bridged', (req, res) => {
    guard(req, res, () => handler(req, res, () => undefined));
  });
};

before(async () => {
  provider = await startProvider();
  app = await startApp(provider, { strategy: { tokenStore: store }, cookieName: 'bridged', routes });
  other = await startApp(provider, { strategy: { tokenStore: store }, cookieName: 'bridged', instanceOf: app.registered, store: app.store, routes });
});
after(async () => {
  await app.close();
  await other.close();
  await provider.close();
});

describe('the guard behind a host that ignores next(error)', () => {
  test('turns away a signed-out visitor, and a signed-in one whose tokens cannot be read', async () => {
    const visitor = new TestBrowser();
    const signedOut = await visitor.get(`${app.url}/bridged`);
    assert.equal(signedOut.status, 401);

    const browser = new TestBrowser();
    await signIn(browser, provider, app);
    assert.equal((await browser.get(`${app.url}/bridged`)).status, 200);
    const runs = handlerRuns;
    store.down = true;
    try {
      const failed = await browser.get(`${other.url}/bridged`);
      assert.notEqual(failed.status, 200);
    } finally {
      store.down = false;
    }
    assert.equal(handlerRuns, runs, 'the handler did not run');
  });
});
