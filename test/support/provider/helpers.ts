/** Small helpers the parts of the test provider share: loading oidc-provider, signing keys, ids. */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type Provider from 'oidc-provider';

export type OidcModule = typeof import('oidc-provider');
export type ProviderInstance = InstanceType<typeof Provider>;

let oidcModulePromise: Promise<OidcModule> | undefined;

/** oidc-provider warns on import under Node 20 ("Unsupported runtime"); tests must stay quiet. */
export function loadOidcProvider(): Promise<OidcModule> {
  oidcModulePromise ??= (async () => {
    const { warn } = console;
    console.warn = () => {};
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = warn;
    }
  })();
  return oidcModulePromise;
}

export interface SigningKey {
  kid: string;
  alg: 'ES384' | 'RS256';
  privateJwk: JWK;
}

export async function generateSigningKey(alg: 'ES384' | 'RS256'): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const kid = randomBytes(8).toString('hex');
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateJwk };
}

export function randomId(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(length), (b) => alphabet[b % alphabet.length]).join('');
}
