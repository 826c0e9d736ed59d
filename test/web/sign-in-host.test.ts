/**
 * A sign-in opened on one host (localhost) whose callbackURL is on another (127.0.0.1): the
 * started sign-in's cookie stays on the first host, so the callback cannot find it. The strategy
 * says so when the sign-in starts, and the failure says where it started and where to open the app.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hardeningSetup } from '../support/app.js';
import { signInAtProvider, TestBrowser } from '../support/http-client.js';
import type { TestProvider } from '../support/provider/index.js';
import { captureWarnings } from '../support/warnings.js';

let provider: TestProvider;
const { app } = hardeningSetup({
  started: (started) => {
    provider = started;
  },
});

describe('a sign-in that comes back to another host', () => {
  test('warns once at the start, and the failure page says where it started and which host to open', async () => {
    const running = await app();
    const port = new URL(running.url).port;
    const browser = new TestBrowser();
    const warnings = captureWarnings(['PASSPORT_LOGTO_SIGN_IN_HOST']);
    let callback: string;
    try {
      const started = await browser.get(`http://localhost:${port}/sign-in`);
      assert.equal(started.status, 302, started.text);
      // A second start from the same wrong host: still one warning per process.
      await new TestBrowser().get(`http://localhost:${port}/sign-in`);
      callback = await signInAtProvider(browser, started.location!, provider.users.demo, running.callbackURL);
    } finally {
      await warnings.stop();
    }
    assert.equal(warnings.warnings.length, 1);
    assert.equal(
      warnings.warnings[0]?.message,
      `passport-logto: a sign-in started on localhost:${port}, but callbackURL is on 127.0.0.1:${port}. Browsers keep cookies per host, so the `
        + `callback will not find the started sign-in. Open the app at 127.0.0.1:${port}, or redirect other hosts to it.`,
    );

    const failed = await browser.get(callback);
    assert.equal(failed.location, `${running.url}/sign-in-failed`, 'Passport fail: failureRedirect and failureMessage apply');
    const { messages } = JSON.parse((await browser.get(failed.location)).text) as { messages: string[] };
    assert.deepEqual(messages, [
      `The sign-in started on localhost:${port} but came back to 127.0.0.1:${port}; open the app at the host of callbackURL (127.0.0.1:${port}) `
        + 'and sign in again. Browsers keep cookies per host, so the started sign-in could not be found here.',
    ]);
    assert.equal((JSON.parse((await browser.get(`${running.url}/`)).text) as { user: unknown }).user, null);
  });

  test('another port of the same host name is the same cookie host: no warning, no host in the state, and the sign-in completes', async () => {
    const first = await app();
    // A second instance of the app whose callbackURL is the first one's: only the port differs.
    const second = await app({ instanceOf: first.registered, strategy: { callbackURL: first.callbackURL } });
    const browser = new TestBrowser();
    const warnings = captureWarnings(['PASSPORT_LOGTO_SIGN_IN_HOST']);
    const started = await browser.get(`${second.url}/sign-in`).finally(() => warnings.stop());
    assert.deepEqual(warnings.warnings, []);
    assert.doesNotMatch(new URL(started.location!).searchParams.get('state') ?? '', /\./);
    const callback = await signInAtProvider(browser, started.location!, provider.users.demo, first.callbackURL);
    assert.equal((await browser.get(callback)).location, `${first.url}/`);
  });

  test('a sign-in started on the host of callbackURL keeps a plain state, and a lost cookie there is only "unknown"', async () => {
    const running = await app();
    const browser = new TestBrowser();
    const started = await browser.get(`${running.url}/sign-in`);
    const state = new URL(started.location!).searchParams.get('state') ?? '';
    assert.doesNotMatch(state, /\./, 'no host in the state');
    const callback = await signInAtProvider(browser, started.location!, provider.users.demo, running.callbackURL);
    const failed = await new TestBrowser().get(callback);
    assert.equal(failed.location, `${running.url}/sign-in-failed`);
  });

  test('a state whose host part someone else wrote is not believed: the message names no host', async () => {
    const running = await app();
    const port = new URL(running.url).port;
    const browser = new TestBrowser();
    const started = new URL((await browser.get(`http://localhost:${port}/sign-in`)).location!);
    const [random, , mac] = (started.searchParams.get('state') ?? '').split('.');
    assert.ok(random && mac, 'the state carries the start host and its MAC');
    const forged = `${random}.${Buffer.from('call-us.example.com').toString('base64url')}.${mac}`;
    const other = new TestBrowser();
    const response = await other.get(`${running.callbackURL}?code=x&state=${forged}&iss=${encodeURIComponent(provider.issuer)}`);
    assert.equal(response.location, `${running.url}/sign-in-failed`);
    const { messages } = JSON.parse((await other.get(response.location)).text) as { messages: string[] };
    assert.deepEqual(messages, ['This sign-in is unknown to this browser or was already completed; start the sign-in again.']);
  });
});
