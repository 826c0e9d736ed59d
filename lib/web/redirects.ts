/**
 * Targets the browser may be sent to after sign-in or sign-out. Everything that could leave the
 * app's origin is refused rather than repaired.
 */

/**
 * A same-origin relative path such as `/orders?page=2`, or undefined. Refuses other origins,
 * protocol-relative `//host`, backslashes (browsers read `/\host` as `//host`), encoded slashes
 * and backslashes, schemes, and control characters.
 */
export function safeReturnTo(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return undefined;
  if (!value.startsWith('/') || value.startsWith('//')) return undefined;
  if (/[\\\u0000-\u001f\u007f]/.test(value)) return undefined;
  const path = value.split(/[?#]/, 1)[0] ?? '';
  if (/%(2f|5c|0[0-9a-f]|1[0-9a-f]|7f)/i.test(path)) {
    // An encoded slash or control character in the path is harmless only while nothing decodes
    // it; some routers and proxies do, so it is not worth the risk.
    return undefined;
  }
  try {
    const base = 'http://placeholder.invalid';
    const resolved = new URL(value, base);
    if (resolved.origin !== base) return undefined;
    const target = resolved.pathname + resolved.search + resolved.hash;
    // Dot segments can collapse into a protocol-relative `//host` (`/.//host`, `/a/..//host`).
    return target.startsWith('//') ? undefined : target;
  } catch {
    return undefined;
  }
}

/**
 * A post sign-out target: an absolute URL on the same origin as one of the allowed URLs, or a
 * relative path resolved against the first of them.
 */
export function safePostLogoutRedirect(value: string, allowed: readonly string[]): string | undefined {
  const [first] = allowed;
  if (first === undefined) return undefined;
  if (/[\\\u0000-\u001f\u007f]/.test(value)) return undefined;
  const relative = safeReturnTo(value);
  if (relative !== undefined) return new URL(relative, first).href;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  const origins = new Set(allowed.map((allowedUrl) => new URL(allowedUrl).origin));
  if (!origins.has(url.origin)) return undefined;
  // The same path rules as for a relative target: `${origin}/%2F%2Fhost` is no safer than `/%2F%2Fhost`.
  return safeReturnTo(url.pathname + url.search + url.hash) === undefined ? undefined : url.href;
}
