import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import { LogtoError } from '../../lib/index.js';
import { TokenVerifier } from '../../lib/logto/token-verifier.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';

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

describe('unknown key ids while Logto\'s JWKS answers 5xx', () => {
  test('cost one JWKS request per cooldown, and are refused without waiting in between', async () => {
    const cooldown = 1;
    const verifier = new TokenVerifier({
      issuer: provider.issuer,
      jwksUri: () => Promise.resolve(new URL(`${provider.issuer}/jwks`)),
      algorithms: ['ES384'],
      clockTolerance: 30,
      timeout: 2,
      cooldown,
      refreshInterval: 600,
    });
    // Keys in hand, then let the cooldown of that download pass: jose's own cooldown counts only
    // successful downloads, so from here on every forged key id used to go to Logto.
    await verifier.verify(await token(), expectations);
    await new Promise((resolve) => setTimeout(resolve, cooldown * 1000 + 100));

    const now = Math.floor(Date.now() / 1000);
    const { privateKey } = await generateKeyPair('ES384');
    const forged = await new SignJWT({ iss: provider.issuer, aud: 'https://api.example.com', sub: 'someone', iat: now, exp: now + 300 })
      .setProtectedHeader({ alg: 'ES384', kid: 'forged-key' })
      .sign(privateKey);

    provider.setFault('/oidc/jwks', { status: 503, body: '{"error":"server_error"}' });
    try {
      provider.resetRequests();
      const started = performance.now();
      const codes: string[] = [];
      for (let i = 0; i < 20; i += 1) {
        await verifier.verify(forged, expectations).then(
          () => codes.push('accepted'),
          (error: unknown) => codes.push(error instanceof LogtoError ? error.code : String(error)),
        );
      }
      const elapsed = performance.now() - started;
      // An upper bound that holds however slow the machine is: one download per cooldown begun.
      const allowed = 1 + Math.floor(elapsed / (cooldown * 1000));
      const downloads = provider.countRequests('/oidc/jwks');
      assert.ok(downloads >= 1 && downloads <= allowed, `${downloads} JWKS requests for 20 forged tokens in ${Math.round(elapsed)} ms (at most ${allowed})`);
      assert.ok(!codes.includes('accepted'));
      // The download that failed is Logto's fault; the others are refused as forged, at once.
      assert.equal(codes.filter((code) => code === 'provider_error').length, downloads);
      assert.equal(codes.filter((code) => code === 'invalid_access_token').length, 20 - downloads);

      // A genuine token keeps working from the keys in hand.
      assert.equal((await verifier.verify(await token(), expectations)).sub, 'someone');
    } finally {
      provider.setFault('/oidc/jwks', undefined);
    }
  });

  test('a first download that fails is tried again on the next token', async () => {
    const verifier = verifierFor(600);
    provider.setFault('/oidc/jwks', { status: 503, body: '{"error":"server_error"}' });
    try {
      await assert.rejects(verifier.verify(await token(), expectations), (error: unknown) => error instanceof LogtoError && error.code === 'provider_error');
    } finally {
      provider.setFault('/oidc/jwks', undefined);
    }
    assert.equal((await verifier.verify(await token(), expectations)).sub, 'someone');
  });
});
