import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startApp, type ExpressFlavor, type PassportFlavor } from './support/app.js';
import { getJson, signIn, type HomeBody } from './support/flows.js';
import { endSessionAtProvider, TestBrowser } from './support/http-client.js';
import { startProvider, type TestProvider } from './support/provider/index.js';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

let provider: TestProvider;
before(async () => {
  provider = await startProvider();
});
after(() => provider.close());

describe('Express 4 and 5, Passport 0.6 and 0.7', () => {
  const flavors: Array<[ExpressFlavor, PassportFlavor]> = [
    ['express4', 'passport06'],
    ['express4', 'passport07'],
    ['express5', 'passport06'],
    ['express5', 'passport07'],
  ];
  for (const [express, passport] of flavors) {
    test(`${express} with ${passport}: sign in, use the helper, sign out`, async () => {
      const running = await startApp(provider, { express, passport, serialize: 'id' });
      try {
        const browser = new TestBrowser();
        await signIn(browser, provider, running);
        const signedIn = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
        assert.equal(signedIn.user?.id, provider.users.demo.sub);
        assert.equal(signedIn.authenticated, true);
        const profile = await getJson<{ claims: { sub: string } }>(browser, `${running.url}/api/profile`);
        assert.equal(profile.body.claims.sub, provider.users.demo.sub);

        const signOut = await browser.get(`${running.url}/sign-out`);
        assert.equal(await endSessionAtProvider(browser, signOut.location ?? ''), `${running.url}/`);
        const signedOut = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
        assert.equal(signedOut.user, null);
        assert.equal((await browser.get(`${running.url}/api/profile`)).status, 401);
      } finally {
        await running.close();
      }
    });
  }
});

test('an older tenant signing with RS256 works the same', async () => {
  const rsaProvider = await startProvider({ alg: 'RS256' });
  const running = await startApp(rsaProvider);
  try {
    const browser = new TestBrowser();
    await signIn(browser, rsaProvider, running);
    const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
    assert.equal(home.user?.id, rsaProvider.users.demo.sub);
    const profile = await getJson<{ claims: { sub: string } }>(browser, `${running.url}/api/profile`);
    assert.equal(profile.status, 200);
  } finally {
    await running.close();
    await rsaProvider.close();
  }
});

describe('the built package', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'passport-logto-'));
    // An app that installed the package: node_modules/passport-logto is this checkout.
    await mkdir(join(dir, 'node_modules'));
    await symlink(root, join(dir, 'node_modules', 'passport-logto'), 'dir');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('loads from CommonJS and ESM as one module', async () => {
    const script = join(dir, 'both.cjs');
    await writeFile(script, `
      const cjs = require('passport-logto');
      import('passport-logto').then((esm) => {
        const strategy = new cjs.LogtoStrategy({ endpoint: 'https://t.logto.app', appId: 'a', appSecret: 's', callbackURL: 'https://app.example/cb' });
        console.log(JSON.stringify({
          name: strategy.name,
          same: cjs.LogtoStrategy === esm.LogtoStrategy && cjs.LogtoError === esm.LogtoError,
          scope: cjs.UserScope.Organizations,
        }));
      });
    `);
    const { stdout } = await run(process.execPath, [script]);
    assert.deepEqual(JSON.parse(stdout), { name: 'logto', same: true, scope: 'urn:logto:scope:organizations' });
  });

  test('type declarations serve ESM and CommonJS TypeScript consumers', async () => {
    await writeFile(join(dir, 'esm.mts'), `
      import { LogtoStrategy, UserScope, type IdTokenClaims } from 'passport-logto';
      const strategy: LogtoStrategy = new LogtoStrategy({ endpoint: 'https://t.logto.app', appId: 'a', appSecret: 's', callbackURL: 'https://app.example/cb', scopes: [UserScope.Email] });
      const claims: IdTokenClaims | undefined = undefined;
      export { strategy, claims };
    `);
    await writeFile(join(dir, 'cjs.cts'), `
      import passportLogto = require('passport-logto');
      const error: passportLogto.LogtoError = new passportLogto.LogtoError('invalid_config', 'x');
      export = error.code;
    `);
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(root, 'node_modules/@types')] },
      files: ['esm.mts', 'cjs.cts'],
    }));
    await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: dir }).catch((error: { stdout: string }) => {
      assert.fail(`tsc failed:\n${error.stdout}`);
    });
  });
});
