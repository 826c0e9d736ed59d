/**
 * How many access tokens one LogtoBearerStrategy validates per second once the JWKS is cached:
 * one token, verified in a loop for about two seconds. Not a test; run it with
 * `node --import tsx bench/bearer.ts`.
 */
import { LogtoBearerStrategy } from '../lib/index.js';
import { API_RESOURCE, startProvider } from '../test/support/provider/index.js';

const durationMs = 2000;

const provider = await startProvider();
try {
  const strategy = new LogtoBearerStrategy({ endpoint: provider.endpoint, audience: API_RESOURCE, requiredScopes: ['read:items'] });
  const now = Math.floor(Date.now() / 1000);
  const token = await provider.sign(
    { iss: provider.issuer, sub: provider.users.demo.sub, aud: API_RESOURCE, scope: 'read:items', iat: now, exp: now + 3600 },
    { typ: 'at+jwt' },
  );

  // The first verification downloads the JWKS; the loop measures the cached path only.
  await strategy.verifyAccessToken(token);
  provider.resetRequests();

  let operations = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < durationMs) {
    await strategy.verifyAccessToken(token);
    operations += 1;
    elapsed = performance.now() - started;
  }
  const perSecond = Math.round((operations / elapsed) * 1000);
  const alg = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as { alg: string };
  console.log(`${perSecond} validations/s (${operations} in ${Math.round(elapsed)} ms, ${alg.alg}, Node ${process.version})`);
  console.log(`requests to Logto during the loop: ${provider.requests.length}`);
} finally {
  await provider.close();
}
