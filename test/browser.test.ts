/**
 * The example in a real browser: Debian's headless Chromium, driven by playwright-core. Nothing
 * is downloaded; without /usr/bin/chromium (or CHROMIUM_PATH) the test fails and says what to install.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { startExample, type RunningExample } from '../example/start.js';
import { API_RESOURCE } from './support/provider/index.js';
import { readSnippets } from './support/readme-snippets.js';
import { freePort } from './support/redis.js';

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const screenshots = fileURLToPath(new URL('../test-results/screenshots/', import.meta.url));
const chromiumInstalled = existsSync(executablePath);
const demo = { sub: 'demo00user01', username: 'demo', password: 'demo-password' };

describe('the example in headless Chromium', () => {
  let example: RunningExample;
  let browser: Browser;
  let page: Page;
  /** Console errors and uncaught exceptions on the example's own pages (a CSP violation, say). */
  const pageErrors: string[] = [];

  before(async () => {
    // Without Chromium the test itself fails, with the message below: a failure, never a skip.
    if (!chromiumInstalled) return;
    await mkdir(screenshots, { recursive: true });
    example = await startExample({ port: 0, baseUrl: undefined, logto: { kind: 'bundled', port: 0 }, sessionSecret: undefined });
    browser = await chromium.launch({
      executablePath,
      headless: true,
      // playwright-core adds --headless and a fresh temporary --user-data-dir of its own.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await openPage();
  });

  after(async () => {
    await browser?.close();
    await example?.close();
  });

  /** A page in a context of its own: a person with no cookies yet. */
  async function openPage(): Promise<Page> {
    const context: BrowserContext = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const opened = await context.newPage();
    // Fail fast with the locator in the message instead of waiting playwright's default 30 s.
    opened.setDefaultTimeout(5_000);
    opened.on('pageerror', (error) => pageErrors.push(`${opened.url()}: ${error.message}`));
    opened.on('console', (message) => {
      const source = message.location().url;
      // An error page's own status is logged as "Failed to load resource"; that one is expected.
      if (message.type() !== 'error' || !source.startsWith(example.url) || message.text().startsWith('Failed to load resource')) return;
      pageErrors.push(`${source}: ${message.text()}`);
    });
    return opened;
  }

  function assertChromium(): void {
    assert.ok(
      chromiumInstalled,
      `Chromium is not installed at ${executablePath}. Install Debian's package (apt-get install -y chromium) ` +
        'or point CHROMIUM_PATH at a Chromium binary; this test never downloads a browser.',
    );
  }

  async function shoot(name: string, on: Page = page): Promise<void> {
    await on.screenshot({ path: `${screenshots}${name}.png`, fullPage: true });
  }

  async function textOf(selector: string, on: Page = page): Promise<string> {
    return ((await on.locator(selector).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
  }

  /** The README's Quick start as a newcomer runs it (`node app.mjs`), with these variables; stopped by the caller. */
  async function startQuickStart(env: Record<string, string>): Promise<{ url: string; output: () => string; stop: () => void }> {
    const folder = fileURLToPath(new URL(`../test-results/browser-quick-start-${process.pid}-${Date.now()}/`, import.meta.url));
    await mkdir(folder, { recursive: true });
    const quickStart = readSnippets(fileURLToPath(new URL('../README.md', import.meta.url))).find((each) => each.id === 'quick-start');
    assert.ok(quickStart, 'README.md has the Quick start');
    await writeFile(`${folder}app.mjs`, quickStart.code);
    const port = await freePort();
    const child = spawn(process.execPath, ['app.mjs'], { cwd: folder, env: { ...process.env, ...env, SESSION_SECRET: 'browser-test-secret', PORT: String(port) } });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Open http')) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`app.mjs exited with ${code}: ${output}`)));
    });
    return {
      url: `http://127.0.0.1:${port}`,
      output: () => output,
      stop: () => {
        child.kill('SIGTERM');
        void rm(folder, { recursive: true, force: true });
      },
    };
  }

  /** Every URL a navigation went through, redirects included, first to last. */
  function redirectChain(response: Response | null): string[] {
    const chain: string[] = [];
    for (let request = response?.request() ?? null; request; request = request.redirectedFrom()) chain.unshift(request.url());
    return chain;
  }

  test('a person signs in, reads every page, hits a forbidden organization and signs out', async () => {
    assertChromium();
    const { url, endpoint } = example;

    await page.goto(url);
    assert.equal(await textOf('h1'), 'Welcome');
    assert.match(await textOf('#demo-account'), /username demo, password demo-password/);
    await shoot('01-home-signed-out');

    await page.click('a#sign-in');
    await page.waitForURL(`${endpoint}/interaction/**`);
    assert.equal(await textOf('main > p'), 'to continue to passport-logto example');
    await page.fill('input[name=username]', demo.username);
    await page.fill('input[name=password]', demo.password);
    await shoot('02-provider-sign-in');
    await page.click('button#sign-in');
    await page.waitForURL(`${url}/`);
    assert.equal(await textOf('#user-name'), 'Demo User');
    await shoot('03-home-signed-in');

    await page.click('nav >> text=ID token');
    await page.waitForURL(`${url}/protected`);
    assert.equal(await textOf('[data-claim="sub"] td'), demo.sub);
    assert.equal(await textOf('[data-claim="iss"] td'), `${endpoint}/oidc`);
    await shoot('04-id-token');

    await page.click('nav >> text=User info');
    await page.waitForURL(`${url}/protected/userinfo`);
    assert.equal(await textOf('[data-custom="plan"]'), 'pro');
    assert.equal(await textOf('[data-claim="email"] td'), 'demo@example.com');
    await shoot('05-userinfo');

    await page.click('nav >> text=API resource');
    await page.waitForURL(`${url}/protected/api`);
    assert.equal(await textOf('[data-claim="aud"] td'), API_RESOURCE);
    assert.equal(await textOf('#scopes'), 'read:items');
    await shoot('06-api-resource');

    await page.click('nav >> text=Organizations');
    await page.waitForURL(`${url}/protected/organizations`);
    assert.equal(await textOf('[data-organization="org-acme"] [data-claim="aud"] td'), 'urn:logto:organization:org-acme');
    assert.equal(await textOf('[data-organization="org-acme"] [data-claim="scope"] td'), 'read:members');
    assert.equal(await page.locator('[data-organization="org-globex"]').count(), 0);
    await shoot('07-organizations');

    // The lookup form, with an organization the user is not a member of: a clear page, not a 500.
    await page.fill('input[name=id]', 'org-globex');
    const [refused] = await Promise.all([page.waitForResponse(`${url}/protected/organizations/org-globex`), page.click('form.lookup button')]);
    assert.equal(refused.status(), 403);
    assert.equal(await textOf('h1'), 'Not a member of this organization');
    assert.match(await textOf('#error-message'), /not a member of the organization "org-globex"/);
    await shoot('08-not-a-member');

    // Sign-out goes through Logto's logout page, which submits itself by script, and comes home.
    await page.click('button#sign-out');
    await page.waitForURL(`${url}/`);
    assert.equal(await textOf('h1'), 'Welcome');
    assert.equal(await page.locator('#sign-out').count(), 0);
    await shoot('09-signed-out');

    // A protected page now goes to sign-in, and on to Logto's login form: both sessions ended.
    const response = await page.goto(`${url}/protected`);
    const chain = redirectChain(response);
    assert.deepEqual(chain.slice(0, 2), [`${url}/protected`, `${url}/sign-in`]);
    assert.ok(page.url().startsWith(`${endpoint}/interaction/`), page.url());
    assert.ok(await page.locator('input[name=username]').isVisible());
    await shoot('10-protected-after-sign-out');

    assert.deepEqual(pageErrors, []);
  });
  test('"Create an account" opens the register screen; the new user lands signed in', async () => {
    assertChromium();
    const { url, endpoint } = example;
    const person = await openPage();
    await person.goto(url);
    await person.click('a#sign-up');
    await person.waitForURL(`${endpoint}/interaction/**`);
    assert.equal(await textOf('h1', person), 'Create account');
    assert.equal(await textOf('main > p', person), 'to continue to passport-logto example');
    assert.equal(await person.locator('form#login').count(), 0, 'not the sign-in form');

    // A taken username is refused on the same screen.
    await person.fill('input[name=username]', 'demo');
    await person.fill('input[name=password]', 'browser-password');
    await person.fill('input[name=confirmPassword]', 'browser-password');
    await person.click('button#create-account');
    await person.waitForSelector('#error');
    assert.equal(await textOf('#error', person), 'This username is already in use.');
    await shoot('11-register-taken', person);

    await person.fill('input[name=username]', 'newcomer_browser');
    await person.fill('input[name=password]', 'browser-password');
    await person.fill('input[name=confirmPassword]', 'browser-password');
    await shoot('12-register', person);
    await person.click('button#create-account');
    await person.waitForURL(`${url}/`);
    assert.equal(await textOf('#user-name', person), 'newcomer_browser');
    await shoot('13-registered-home', person);
    await person.context().close();
    assert.deepEqual(pageErrors, []);
  });

  test('cancelling at Logto says so and offers to sign in again', async () => {
    assertChromium();
    const { url, endpoint } = example;
    const person = await openPage();
    await person.goto(url);
    await person.click('a#sign-in');
    await person.waitForURL(`${endpoint}/interaction/**`);
    await person.click('button#cancel');
    await person.waitForURL(`${url}/sign-in-failed`);
    assert.equal(await textOf('h1', person), 'Sign-in cancelled');
    assert.equal(await textOf('#cancelled-message', person), 'You cancelled the sign-in at Logto, so you are not signed in.');
    assert.equal(await person.locator('#sign-out').count(), 0);
    await shoot('14-cancelled', person);

    await person.click('a#sign-in-again');
    await person.waitForURL(`${endpoint}/interaction/**`);
    assert.equal(await textOf('h1', person), 'Sign in');
    await person.context().close();
    assert.deepEqual(pageErrors, []);
  });

  test('reloading the callback URL while signed in lands on the page again, signed in', async () => {
    assertChromium();
    const { url, endpoint } = example;
    const person = await openPage();
    await person.goto(url);
    let callback = '';
    person.on('request', (request) => {
      if (request.url().startsWith(`${url}/callback?`)) callback = request.url();
    });
    await person.click('a#sign-in');
    await person.waitForURL(`${endpoint}/interaction/**`);
    await person.fill('input[name=username]', demo.username);
    await person.fill('input[name=password]', demo.password);
    await person.click('button#sign-in');
    await person.waitForURL(`${url}/`);
    assert.ok(callback, 'the browser went through the callback');

    // The callback URL again, as a reload or a restored tab would open it.
    await person.goto(callback);
    await person.waitForURL(`${url}/`);
    assert.equal(await textOf('#user-name', person), 'Demo User');
    assert.equal(await person.locator('text=Sign-in failed').count(), 0);
    await shoot('16-callback-replayed', person);
    await person.context().close();
    assert.deepEqual(pageErrors, []);
  });

  test('back to the used sign-in form and submitting it: a page that leads back to the app, still signed in', async () => {
    assertChromium();
    const { url, endpoint } = example;
    const person = await openPage();
    await person.goto(url);
    await person.click('a#sign-in');
    await person.waitForURL(`${endpoint}/interaction/**`);
    await person.fill('input[name=username]', demo.username);
    await person.fill('input[name=password]', demo.password);
    await person.click('button#sign-in');
    await person.waitForURL(`${url}/`);
    assert.equal(await textOf('#user-name', person), 'Demo User');

    // The back button shows the sign-in form again, from the browser's cache.
    await person.goBack();
    assert.ok(person.url().startsWith(`${endpoint}/interaction/`), person.url());
    assert.equal(await textOf('h1', person), 'Sign in');
    await person.fill('input[name=username]', demo.username);
    await person.fill('input[name=password]', demo.password);
    const [stale] = await Promise.all([person.waitForResponse((response) => response.request().method() === 'POST'), person.click('button#sign-in')]);
    assert.equal(stale.status(), 400);
    await person.waitForSelector('a#back-to-app');
    assert.equal(await textOf('h1', person), 'This sign-in has ended');
    assert.match(await textOf('#error-message', person), /already finished or has expired/);
    assert.equal(await textOf('a#back-to-app', person), 'Back to passport-logto example');
    await shoot('15-used-sign-in-form', person);

    await person.click('a#back-to-app');
    await person.waitForURL(`${url}/`);
    assert.equal(await textOf('#user-name', person), 'Demo User');
    await person.context().close();
    assert.deepEqual(pageErrors, []);
  });
  test('the Quick start opened on localhost while callbackURL is on 127.0.0.1: its failure page says where the sign-in started and which host to open', async () => {
    assertChromium();
    const provider = example.provider!;
    const registered = await provider.registerApp({ redirectUris: ['http://127.0.0.1:3000/callback'], anyLoopbackRedirectUri: true });
    const quickStart = await startQuickStart({ LOGTO_ENDPOINT: provider.endpoint, LOGTO_APP_ID: registered.appId, LOGTO_APP_SECRET: registered.appSecret });
    try {
      const port = new URL(quickStart.url).port;
      const person = await openPage();
      await person.goto(`http://localhost:${port}/`);
      await person.click('text=Sign in');
      await person.waitForURL(`${provider.endpoint}/interaction/**`);
      await person.fill('input[name=username]', demo.username);
      await person.fill('input[name=password]', demo.password);
      await person.click('button#sign-in');
      await person.waitForURL(`${quickStart.url}/sign-in-failed`);
      assert.equal(
        await textOf('p', person),
        `Sign-in failed: The sign-in started on localhost:${port} but came back to 127.0.0.1:${port}; open the app at the host of callbackURL `
          + `(127.0.0.1:${port}) and sign in again. Browsers keep cookies per host, so the started sign-in could not be found here.`,
      );
      await shoot('17-quick-start-sign-in-on-another-host', person);
      // The app said so when the sign-in started, too.
      assert.match(quickStart.output(), /\[PASSPORT_LOGTO_SIGN_IN_HOST\] Warning: passport-logto: a sign-in started on localhost:/);
      await person.context().close();
    } finally {
      quickStart.stop();
    }
  });

  test('a wrong app secret: the page says the app is not set up right, names the app ID, and says to check the secret, not to wait', async () => {
    assertChromium();
    const provider = example.provider!;
    const misconfigured = await startExample({
      port: 0,
      baseUrl: undefined,
      logto: { kind: 'tenant', endpoint: provider.endpoint, appId: provider.app.appId, appSecret: 'not-the-app-secret', resource: undefined, scopes: [] },
      sessionSecret: undefined,
    });
    try {
      await provider.addRedirectUris(provider.app.appId, [`${misconfigured.url}/callback`], [`${misconfigured.url}/`]);
      const person = await openPage();
      await person.goto(misconfigured.url);
      await person.click('a#sign-in');
      await person.waitForURL(`${provider.endpoint}/interaction/**`);
      await person.fill('input[name=username]', demo.username);
      await person.fill('input[name=password]', demo.password);
      const [answer] = await Promise.all([
        person.waitForResponse((response) => response.url().startsWith(`${misconfigured.url}/callback`)),
        person.click('button#sign-in'),
      ]);
      assert.equal(answer.status(), 500);
      assert.equal(await textOf('h1', person), 'The app is not set up right for Logto');
      const shown = await textOf('main', person);
      assert.ok(shown.includes(`the app "${provider.app.appId}"`), shown);
      assert.match(shown, /Check that `appSecret` is that app's App secret in the Logto Console/);
      assert.doesNotMatch(shown, /in a moment|not answering/);
      await shoot('18-wrong-app-secret', person);
      await person.context().close();
    } finally {
      await misconfigured.close();
    }
  });
});
