import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
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
}

export interface JwtExpectations {
  audience: string | readonly string[];
  kind: JwtKind;
  /** Required `typ` header, compared without the `application/` prefix. */
  typ?: string;
}

/**
 * Verifies JWTs that Logto signed, against its JWKS downloaded once and kept (downloaded again on
 * an unknown key id, no more often than the cooldown allows): signature with an algorithm
 * allow-list, issuer, audience and times.
 */
export class TokenVerifier {
  private keys: Promise<JWTVerifyGetKey> | undefined;

  constructor(private readonly options: TokenVerifierOptions) {}

  private remoteKeys(): Promise<JWTVerifyGetKey> {
    this.keys ??= this.options.jwksUri().then(
      (uri) => createRemoteJWKSet(uri, {
        timeoutDuration: Math.round(this.options.timeout * 1000),
        cooldownDuration: Math.round(this.options.cooldown * 1000),
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
      const { payload } = await jwtVerify<Claims>(token, await this.remoteKeys(), {
        algorithms: [...this.options.algorithms],
        issuer: this.options.issuer,
        audience: typeof expect.audience === 'string' ? expect.audience : [...expect.audience],
        clockTolerance: this.options.clockTolerance,
        ...(expect.typ === undefined ? {} : { typ: expect.typ }),
      });
      return payload;
    } catch (error) {
      throw toLogtoError(error, 'verify a token', expect.kind);
    }
  }
}
