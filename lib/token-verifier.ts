import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { LogtoError } from './errors.js';
import { toLogtoError, type JwtKind } from './provider-errors.js';

export interface TokenVerifierOptions {
  issuer: string;
  /** Where the JWKS is; asked for once, on the first verification. */
  jwksUri: () => Promise<URL>;
  algorithms: readonly string[];
  /** Seconds. */
  clockTolerance: number;
  /** Seconds to wait for the JWKS. */
  timeout: number;
  /** Seconds between two JWKS downloads caused by an unknown key id. */
  cooldown: number;
  /** Seconds after which the JWKS is downloaded again in the background, to drop retired keys. Default 600. */
  refreshInterval?: number;
}

export interface JwtExpectations {
  audience: string | readonly string[];
  kind: JwtKind;
  /** Required `typ` header, compared without the `application/` prefix. */
  typ?: string;
  /**
   * The token came straight from Logto's token endpoint, so an unknown key id means Logto rotated
   * its keys, not that someone forged one: the JWKS is downloaded again despite the cooldown.
   */
  fromLogto?: boolean;
}

/**
 * Verifies JWTs that Logto signed, against its JWKS downloaded once and kept (downloaded again on
 * an unknown key id, no more often than the cooldown allows, and refreshed in the background):
 * signature with an algorithm allow-list, issuer, audience and times.
 */
export class TokenVerifier {
  private keys: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  private refreshedAt = Date.now();

  constructor(private readonly options: TokenVerifierOptions) {}

  /**
   * jose would download an old JWKS again before using it, and fail the token when Logto does not
   * answer; here the keys in hand keep working, and the new download happens beside the request.
   */
  private refreshInBackground(keys: ReturnType<typeof createRemoteJWKSet>): void {
    const now = Date.now();
    if (now - this.refreshedAt < (this.options.refreshInterval ?? 600) * 1000 || keys.reloading) return;
    this.refreshedAt = now;
    keys.reload().catch(() => undefined);
  }

  private remoteKeys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    this.keys ??= this.options.jwksUri().then(
      (uri) => createRemoteJWKSet(uri, {
        timeoutDuration: Math.round(this.options.timeout * 1000),
        cooldownDuration: Math.round(this.options.cooldown * 1000),
        cacheMaxAge: Infinity,
        // jose hides the status of a failed download; a 5xx is Logto's fault, not a bad answer.
        [customFetch]: async (url: string, init: RequestInit) => {
          const response = await fetch(url, init);
          if (response.status >= 500) {
            throw new LogtoError('provider_error', `Logto answered HTTP ${response.status} for its signing keys (JWKS).`, { status: response.status });
          }
          return response;
        },
      }),
      (error: unknown) => {
        this.keys = undefined;
        throw error;
      },
    );
    return this.keys;
  }

  async verify<Claims extends JWTPayload>(token: string, expect: JwtExpectations): Promise<Claims> {
    try {
      const keys = await this.remoteKeys();
      this.refreshInBackground(keys);
      const verifyWithKeys = () =>
        jwtVerify<Claims>(token, keys, {
          algorithms: [...this.options.algorithms],
          issuer: this.options.issuer,
          audience: typeof expect.audience === 'string' ? expect.audience : [...expect.audience],
          clockTolerance: this.options.clockTolerance,
          ...(expect.typ === undefined ? {} : { typ: expect.typ }),
        });
      const { payload } = await verifyWithKeys().catch(async (error: unknown) => {
        // jose's cooldown also starts at a regular download, so a rotation right after one would
        // fail sign-ins for its length; tokens from Logto itself may always bring a new key.
        if (!expect.fromLogto || !(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
        await keys.reload();
        return verifyWithKeys();
      });
      // jose accepts an iat in the future; a token from the future is forged or from a broken clock.
      if (typeof payload.iat === 'number' && payload.iat > Math.floor(Date.now() / 1000) + this.options.clockTolerance) {
        throw new LogtoError(expect.kind, 'The token from Logto is not valid (its "iat" is in the future).');
      }
      return payload;
    } catch (error) {
      throw toLogtoError(error, 'verify a token', expect.kind);
    }
  }
}
