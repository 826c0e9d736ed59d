import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { LogtoFetch, LogtoFetchInit } from '../configuration.js';
import { LogtoError } from '../errors.js';
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
  /**
   * Seconds after any JWKS download attempt, successful or not, during which a token with an
   * unknown key id is refused without downloading again.
   */
  cooldown: number;
  /** Seconds after which the JWKS is downloaded again in the background, to drop retired keys. Default 600. */
  refreshInterval?: number;
  /** The app's `fetch` option; the global `fetch` when absent. */
  fetch?: LogtoFetch | undefined;
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

type RemoteKeys = ReturnType<typeof createRemoteJWKSet>;

/**
 * Verifies JWTs that Logto signed, against its JWKS downloaded once and kept (downloaded again on
 * an unknown key id, no more often than the cooldown allows, and refreshed in the background):
 * signature with an algorithm allow-list, issuer, audience and times.
 */
export class TokenVerifier {
  private keys: Promise<RemoteKeys> | undefined;
  /** When the last JWKS download started, whether it succeeded or not (ms). */
  private lastDownloadAt = Number.NEGATIVE_INFINITY;
  /** Whether a download ever succeeded, so that there are keys to use. */
  private haveKeys = false;
  /** The download started for an unknown key id, which concurrent requests with one wait for. */
  private unknownKeyDownload: Promise<void> | undefined;

  /** The JWKS URL once known, for an error message that names where it tried. */
  private jwksUrl: string | undefined;

  constructor(private readonly options: TokenVerifierOptions) {}

  /** Every download goes through here, so that the cooldown counts failed ones too. */
  private download(keys: RemoteKeys): Promise<void> {
    this.lastDownloadAt = Date.now();
    return keys.reload().then(() => {
      this.haveKeys = true;
    });
  }

  /**
   * jose would download an old JWKS again before using it, and fail the token when Logto does not
   * answer; here the keys in hand keep working, and the new download happens beside the request.
   */
  private refreshInBackground(keys: RemoteKeys): void {
    if (Date.now() - this.lastDownloadAt < (this.options.refreshInterval ?? 600) * 1000 || keys.reloading) return;
    this.download(keys).catch(() => undefined);
  }

  /**
   * Downloads the JWKS again for a token whose key id is unknown, unless a download was tried
   * within the cooldown. jose's own cooldown starts only at a successful download, so while
   * Logto's JWKS answers 5xx every forged key id would cost a request to Logto and a wait.
   * Returns whether the keys may have changed.
   */
  private async downloadForUnknownKey(keys: RemoteKeys): Promise<boolean> {
    if (!this.unknownKeyDownload) {
      if (Date.now() - this.lastDownloadAt < this.options.cooldown * 1000) return false;
      this.unknownKeyDownload = this.download(keys).finally(() => {
        this.unknownKeyDownload = undefined;
      });
    }
    await this.unknownKeyDownload;
    return true;
  }

  private remoteKeys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    this.keys ??= this.options.jwksUri().then(
      (uri) => {
        this.jwksUrl = uri.href;
        return createRemoteJWKSet(uri, {
          timeoutDuration: Math.round(this.options.timeout * 1000),
          // Unknown key ids are handled in verify(), with a cooldown that failed downloads count in.
          cooldownDuration: Infinity,
          cacheMaxAge: Infinity,
          // jose hides the status of a failed download; a 5xx is Logto's fault, not a bad answer.
          [customFetch]: async (url: string, init: RequestInit) => {
            const response = this.options.fetch ? ((await this.options.fetch(url, init as LogtoFetchInit)) as Response) : await fetch(url, init);
            if (response.status >= 500) {
              throw new LogtoError('provider_error', `Logto answered HTTP ${response.status} for its signing keys (JWKS).`, { providerStatus: response.status });
            }
            return response;
          },
        });
      },
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
      // The first download, or the next try after it failed (there are no keys to fall back on).
      if (!this.haveKeys) await this.download(keys);
      else this.refreshInBackground(keys);
      const verifyWithKeys = () =>
        jwtVerify<Claims>(token, keys, {
          algorithms: [...this.options.algorithms],
          issuer: this.options.issuer,
          audience: typeof expect.audience === 'string' ? expect.audience : [...expect.audience],
          clockTolerance: this.options.clockTolerance,
          ...(expect.typ === undefined ? {} : { typ: expect.typ }),
        });
      const { payload } = await verifyWithKeys().catch(async (error: unknown) => {
        if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
        // The cooldown also starts at a regular download, so a rotation right after one would
        // fail sign-ins for its length; tokens from Logto itself may always bring a new key.
        if (expect.fromLogto) await this.download(keys);
        else if (!(await this.downloadForUnknownKey(keys))) throw error;
        return verifyWithKeys();
      });
      // jose accepts an iat in the future; a token from the future is forged or from a broken clock.
      if (typeof payload.iat === 'number' && payload.iat > Math.floor(Date.now() / 1000) + this.options.clockTolerance) {
        throw new LogtoError(expect.kind, 'The token from Logto is not valid (its "iat" is in the future).');
      }
      return payload;
    } catch (error) {
      throw toLogtoError(error, 'verify a token', expect.kind, this.jwksUrl === undefined ? {} : { url: this.jwksUrl });
    }
  }
}
