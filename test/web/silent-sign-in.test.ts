/** Silent sign-in: a `prompt=none` detour through Logto for anonymous page navigations. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Express } from 'express';
import type { LogtoStrategy } from '../../lib/index.js';
import { startApp, type RunningApp } from '../support/app.js';
import { signIn } from '../support/flows.js';
import { TestBrowser, type TestResponse } from '../support/http-client.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';
import { captureWarnings } from '../support/warnings.js';

let provider: TestProvider;
const apps: RunningApp[] = [];
before(async () => {
  provider = await startProvider();
});
after(async () => {
  for (const running of apps) await running.close();
  await provider.close();
});

const page = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

function silentRoutes(express: Express, logto: LogtoStrategy): void {
  const silent = logto.silentSignIn({ retryAfter: 1 });
  express.get('/page', silent, (req, res) => {
    res.json({ user: (req.user as { id?: string } | undefined)?.id ?? null });
  });
  express.post('/page', silent, (req, res) => res.json({ posted: true }));
}

async function app(instanceOf?: RunningApp): Promise<RunningApp> {
  const running = await startApp(provider, { routes: silentRoutes, ...(instanceOf ? { instanceOf: instanceOf.registered } : {}) });
  apps.push(running);
  return running;
}

/** Follows redirects as a browser's page navigation would, with its headers; returns every hop. */
async function navigate(browser: TestBrowser, url: string): Promise<{ last: TestResponse; hops: TestResponse[] }> {
  const hops: TestResponse[] = [];
  let response = await browser.request(url, { headers: page, raw: true });
  hops.push(response);
  while (response.status >= 300 && response.status < 400 && response.location && hops.length < 15) {
    response = await browser.request(response.location, { headers: page, raw: true });
    hops.push(response);
  }
  return { last: response, hops };
}

/** A first page view: it only sets the mark that shows the browser keeps cookies. */
async function firstView(browser: TestBrowser, url: string): Promise<void> {
  const response = await browser.request(url, { headers: page, raw: true });
  assert.equal(response.status, 200, 'the first view is served as it is');
}

describe('silent sign-in', () => {
  test('a visitor with a Logto session comes back signed in, without seeing a Logto page', async () => {
    const first = await app();
    const second = await app(first);
    const browser = new TestBrowser();
    await signIn(browser, provider, first);

    await firstView(browser, `${second.url}/page`);
    const { last, hops } = await navigate(browser, `${second.url}/page`);
    assert.equal(last.status, 200);
    assert.equal((JSON.parse(last.text) as { user: string | null }).user, provider.users.demo.sub);
    const authorization = hops.map((hop) => hop.location ?? '').find((location) => location.startsWith(`${provider.issuer}/auth`));
    assert.ok(authorization, 'the detour went through Logto');
    assert.equal(new URL(authorization).searchParams.get('prompt'), 'none');
    assert.ok(hops.every((hop) => hop.status !== 200 || hop.url.startsWith(second.url)), 'no page of Logto was shown');
  });

  test('a visitor without one comes back to the same page signed out, once per retryAfter, and never loops', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await firstView(browser, `${running.url}/page?x=1`);
    const { last, hops } = await navigate(browser, `${running.url}/page?x=1`);
    assert.equal(last.status, 200);
    assert.equal(last.url, `${running.url}/page?x=1`, 'back on the same page');
    assert.equal((JSON.parse(last.text) as { user: string | null }).user, null);
    assert.ok(hops.length <= 5, `a short detour (${hops.length} hops)`);

    const again = await browser.request(`${running.url}/page?x=1`, { headers: page, raw: true });
    assert.equal(again.status, 200, 'no second attempt right away');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const later = await browser.request(`${running.url}/page`, { headers: page, raw: true });
    assert.equal(later.status, 302, 'tried again once retryAfter has passed');
  });

  test('API calls, scripts and non-GET requests are never redirected', async () => {
    const running = await app();
    const cases: Array<[string, Record<string, string>]> = [
      ['json', { accept: 'application/json' }],
      ['fetch', { accept: 'text/html', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' }],
      ['iframe', { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }],
      ['xhr', { accept: 'text/html', 'x-requested-with': 'XMLHttpRequest' }],
    ];
    for (const [name, headers] of cases) {
      const response = await new TestBrowser().request(`${running.url}/page`, { headers, raw: true });
      assert.equal(response.status, 200, name);
    }
    const posted = await new TestBrowser().request(`${running.url}/page`, { method: 'POST', headers: { accept: 'text/html' } });
    assert.equal(posted.status, 200, 'post');
    // The control: the same page as a navigation does take the detour (from the second view on).
    const browser = new TestBrowser();
    await firstView(browser, `${running.url}/page`);
    assert.equal((await browser.request(`${running.url}/page`, { headers: page, raw: true })).status, 302);
  });

  test('a per-request prompt=none that Logto cannot complete fails with sign_in_required', async () => {
    const running = await startApp(provider, {
      routes: (express, logto, passport) => {
        express.get('/sign-in-quietly', passport.authenticate(logto.name, { prompt: 'none' }));
      },
    });
    apps.push(running);
    const browser = new TestBrowser();
    // Expected: prompt=none without consent means no refresh token, which the start warns about.
    const warnings = captureWarnings(['PASSPORT_LOGTO_NO_REFRESH_TOKEN']);
    const { last } = await navigate(browser, `${running.url}/sign-in-quietly`).finally(() => warnings.stop());
    assert.equal(last.url, `${running.url}/sign-in-failed`);
    assert.match(last.text, /login_required/);
    assert.match(warnings.warnings[0]?.message ?? '', /prompt=none/);
  });
});
