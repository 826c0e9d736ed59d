import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LogtoError } from '../lib/index.js';
import { TokenVerifier } from '../lib/token-verifier.js';
import { startProvider, type TestProvider } from './support/provider.js';

let provider: TestProvider;
before(async () => {
  provider = await startProvider();
});
after(() => provider.close());

const verifierFor = (refreshInterval: number): TokenVerifier =>
  new TokenVerifier({
    issuer: provider.issuer,
    jwksUri: () => Promise.resolve(new URL(`${provider.issuer}/jwks`)),
    algorithms: ['ES384'],
    clockTolerance: 30,
    timeout: 2,
    cooldown: 30,
    refreshInterval,
  });

async function token(): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return provider.sign({ iss: provider.issuer, aud: 'https://api.example.com', sub: 'someone', iat: now, exp: now + 300 });
}

const expectations = { audience: 'https://api.example.com', kind: 'invalid_access_token' } as const;

test('keys in hand keep working while Logto is down, and are refreshed in the background once it is back', async () => {
  const verifier = verifierFor(0.2);
  provider.resetRequests();
  assert.equal((await verifier.verify(await token(), expectations)).sub, 'someone');
  assert.equal(provider.countRequests('/oidc/jwks'), 1);

  const signed = await token();
  await provider.pause();
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await verifier.verify(signed, expectations)).sub, 'someone', 'an old JWKS is still used when Logto is down');
    assert.equal((await verifier.verify(signed, expectations)).sub, 'someone');
  } finally {
    await provider.resume();
  }

  await new Promise((resolve) => setTimeout(resolve, 300));
  const before = provider.countRequests('/oidc/jwks');
  await verifier.verify(await token(), expectations);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(provider.countRequests('/oidc/jwks'), before + 1, 'a due refresh is one download beside the request');
});

test('within the refresh interval, verifications cost no request to Logto', async () => {
  const verifier = verifierFor(600);
  await verifier.verify(await token(), expectations);
  provider.resetRequests();
  for (let i = 0; i < 20; i += 1) await verifier.verify(await token(), expectations);
  assert.equal(provider.requests.length, 0);
});

test('a token issued in the future is refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  const future = await provider.sign({ iss: provider.issuer, aud: 'https://api.example.com', sub: 'someone', iat: now + 3600, exp: now + 7200 });
  await assert.rejects(verifierFor(600).verify(future, expectations), (error: unknown) => error instanceof LogtoError && error.code === 'invalid_access_token');
});
