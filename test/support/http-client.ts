import { request as httpRequest } from 'node:http';

/**
 * A tiny browser over fetch: a cookie jar, manual redirects, and helpers that
 * drive the test provider's sign-in, cancel and sign-out pages.
 */

export interface TestResponse {
  status: number;
  headers: Headers;
  /** Absolute Location, if any. */
  location: string | undefined;
  text: string;
  url: string;
}

export interface RequestInitLite {
  method?: string;
  form?: Record<string, string>;
  headers?: Record<string, string>;
  /**
   * Send a GET through node:http instead of fetch, which always adds `Sec-Fetch-Mode: cors`; a
   * browser's page navigation says `navigate`.
   */
  raw?: boolean;
}

interface StoredCookie {
  name: string;
  value: string;
  hostname: string;
  path: string;
  expiresAt: number | undefined;
}

/** RFC 6265 5.1.4 default-path: the directory of the request path. */
function defaultPath(pathname: string): string {
  if (!pathname.startsWith('/')) return '/';
  const lastSlash = pathname.lastIndexOf('/');
  return lastSlash <= 0 ? '/' : pathname.slice(0, lastSlash);
}

/** RFC 6265 5.1.4 path-match. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath.charAt(cookiePath.length) === '/';
}

export class TestBrowser {
  private jar: StoredCookie[] = [];

  /** Never follows redirects. Cookies are host-only and, like browsers, ignore the port. */
  async request(url: string, init: RequestInitLite = {}): Promise<TestResponse> {
    const target = new URL(url);
    if (init.raw) return this.rawGet(target, init.headers ?? {});
    const headers = new Headers(init.headers);
    const cookieHeader = this.cookieHeaderFor(target);
    if (cookieHeader && !headers.has('cookie')) headers.set('cookie', cookieHeader);
    let body: URLSearchParams | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form);
      headers.set('content-type', 'application/x-www-form-urlencoded');
    }
    const response = await fetch(target, {
      method: init.method ?? (body ? 'POST' : 'GET'),
      headers,
      body,
      redirect: 'manual',
    });
    this.storeCookies(target, response.headers.getSetCookie());
    const rawLocation = response.headers.get('location');
    return {
      status: response.status,
      headers: response.headers,
      location: rawLocation === null ? undefined : new URL(rawLocation, target).href,
      text: await response.text(),
      url: target.href,
    };
  }

  get(url: string): Promise<TestResponse> {
    return this.request(url);
  }

  private rawGet(target: URL, extra: Record<string, string>): Promise<TestResponse> {
    const cookie = this.cookieHeaderFor(target);
    const headers: Record<string, string> = { ...extra, ...(cookie ? { cookie } : {}) };
    return new Promise((resolve, reject) => {
      const request = httpRequest(target, { method: 'GET', headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const setCookie = response.headers['set-cookie'] ?? [];
          this.storeCookies(target, setCookie);
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value]) responseHeaders.append(name, item);
          }
          const location = response.headers.location;
          resolve({
            status: response.statusCode ?? 0,
            headers: responseHeaders,
            location: location === undefined ? undefined : new URL(location, target).href,
            text: Buffer.concat(chunks).toString('utf8'),
            url: target.href,
          });
        });
      });
      request.on('error', reject);
      request.end();
    });
  }

  post(url: string, form: Record<string, string>): Promise<TestResponse> {
    return this.request(url, { method: 'POST', form });
  }

  /**
   * Requests url, then follows 3xx Locations with GET. Stops before requesting a
   * URL for which stopAt returns true (it is then the last entry of chain and
   * `response` is the redirect that pointed there), or at a non-redirect.
   */
  async follow(
    url: string,
    options: { stopAt?: (url: string) => boolean; max?: number } = {},
  ): Promise<{ response: TestResponse; chain: string[] }> {
    const max = options.max ?? 20;
    const chain = [url];
    let response = await this.get(url);
    while (response.status >= 300 && response.status < 400 && response.location) {
      const next = response.location;
      chain.push(next);
      if (options.stopAt?.(next)) break;
      if (chain.length > max) throw new Error(`too many redirects: ${chain.join(' -> ')}`);
      response = await this.get(next);
    }
    return { response, chain };
  }

  cookie(hostname: string, name: string): string | undefined {
    this.dropExpired();
    return this.jar.find((c) => c.hostname === hostname && c.name === name)?.value;
  }

  clearCookies(): void {
    this.jar = [];
  }

  /** Drops one cookie, as when a session cookie expires and the others stay. */
  forgetCookie(hostname: string, name: string): void {
    this.jar = this.jar.filter((c) => !(c.hostname === hostname && c.name === name));
  }

  private dropExpired(): void {
    const now = Date.now();
    this.jar = this.jar.filter((c) => c.expiresAt === undefined || c.expiresAt > now);
  }

  private cookieHeaderFor(target: URL): string {
    this.dropExpired();
    return this.jar
      .filter((c) => c.hostname === target.hostname && pathMatches(target.pathname, c.path))
      // Longer paths first, as browsers do.
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private storeCookies(target: URL, setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = defaultPath(target.pathname);
      let expiresAt: number | undefined;
      let maxAgeSeen = false;
      for (const attribute of attributes) {
        const [rawKey = '', ...rest] = attribute.split('=');
        const key = rawKey.trim().toLowerCase();
        const attrValue = rest.join('=').trim();
        if (key === 'path' && attrValue.startsWith('/')) path = attrValue;
        else if (key === 'max-age' && /^-?\d+$/.test(attrValue)) {
          // Max-Age wins over Expires.
          maxAgeSeen = true;
          expiresAt = Date.now() + Number(attrValue) * 1000;
        } else if (key === 'expires' && !maxAgeSeen) {
          const time = Date.parse(attrValue);
          if (!Number.isNaN(time)) expiresAt = time;
        }
      }
      this.jar = this.jar.filter((c) => !(c.name === name && c.hostname === target.hostname && c.path === path));
      if (expiresAt === undefined || expiresAt > Date.now()) {
        this.jar.push({ name, value, hostname: target.hostname, path, expiresAt });
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Page helpers
// ---------------------------------------------------------------------------

function decodeEntities(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_m, code: string) => String.fromCharCode(parseInt(code, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'i').exec(tag);
  const raw = match?.[1] ?? match?.[2];
  return raw === undefined ? undefined : decodeEntities(raw);
}

export interface ParsedForm {
  id: string | undefined;
  action: string;
  method: string;
  /** Hidden inputs (name -> value). */
  fields: Record<string, string>;
}

/** Finds a form in an HTML page (the first one, or the one with the given id); action made absolute. */
export function parseForm(html: string, pageUrl: string, id?: string): ParsedForm | undefined {
  for (const match of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/gi)) {
    const openTag = /<form\b[^>]*>/i.exec(match[0])?.[0] ?? '';
    const formId = attribute(openTag, 'id');
    if (id !== undefined && formId !== id) continue;
    const fields: Record<string, string> = {};
    for (const input of (match[1] ?? '').matchAll(/<input\b[^>]*>/gi)) {
      const name = attribute(input[0], 'name');
      if (name && attribute(input[0], 'type')?.toLowerCase() === 'hidden') fields[name] = attribute(input[0], 'value') ?? '';
    }
    return {
      id: formId,
      action: new URL(attribute(openTag, 'action') ?? pageUrl, pageUrl).href,
      method: (attribute(openTag, 'method') ?? 'get').toUpperCase(),
      fields,
    };
  }
  return undefined;
}

function describe(response: TestResponse): string {
  const text = response.text.replace(/<style[\s\S]*?<\/style>/gi, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
  return `${response.status} at ${response.url}: ${text.slice(0, 300)}`;
}

/** Opens the authorization URL and follows it to the provider's login page (or straight back to the app). */
async function openAuthorization(
  browser: TestBrowser,
  authorizationUrl: string,
  callbackPrefix: string,
): Promise<{ callback: string } | { page: TestResponse }> {
  const { response, chain } = await browser.follow(authorizationUrl, { stopAt: (u) => u.startsWith(callbackPrefix) });
  const last = chain[chain.length - 1] ?? authorizationUrl;
  if (last.startsWith(callbackPrefix)) return { callback: last };
  if (response.status !== 200) throw new Error(`expected the sign-in page, got ${describe(response)}`);
  return { page: response };
}

/**
 * Signs in at the provider (reusing an existing provider session if there is
 * one) and returns the callback URL (code, state, iss) without requesting it.
 */
export async function signInAtProvider(
  browser: TestBrowser,
  authorizationUrl: string,
  user: { username: string; password: string },
  callbackPrefix: string,
): Promise<string> {
  const opened = await openAuthorization(browser, authorizationUrl, callbackPrefix);
  if ('callback' in opened) return opened.callback;
  const form = parseForm(opened.page.text, opened.page.url, 'login');
  if (!form) throw new Error(`no login form: ${describe(opened.page)}`);
  const submitted = await browser.post(form.action, { ...form.fields, username: user.username, password: user.password });
  if (!submitted.location) throw new Error(`sign-in failed: ${describe(submitted)}`);
  return finishAtCallback(browser, submitted.location, callbackPrefix);
}

/** Presses "Cancel" on the provider's sign-in page; returns the callback URL carrying error=access_denied. */
export async function cancelAtProvider(browser: TestBrowser, authorizationUrl: string, callbackPrefix: string): Promise<string> {
  const opened = await openAuthorization(browser, authorizationUrl, callbackPrefix);
  if ('callback' in opened) throw new Error(`already signed in, nothing to cancel: ${opened.callback}`);
  const form = parseForm(opened.page.text, opened.page.url, 'abort');
  if (!form) throw new Error(`no cancel form: ${describe(opened.page)}`);
  const submitted = await browser.post(form.action, form.fields);
  if (!submitted.location) throw new Error(`cancel failed: ${describe(submitted)}`);
  return finishAtCallback(browser, submitted.location, callbackPrefix);
}

async function finishAtCallback(browser: TestBrowser, location: string, callbackPrefix: string): Promise<string> {
  if (location.startsWith(callbackPrefix)) return location;
  const { response, chain } = await browser.follow(location, { stopAt: (u) => u.startsWith(callbackPrefix) });
  const last = chain[chain.length - 1] ?? location;
  if (!last.startsWith(callbackPrefix)) throw new Error(`did not reach ${callbackPrefix}: ${describe(response)}`);
  return last;
}

/**
 * Completes RP-initiated logout: requests the end-session URL, submits the
 * provider's self-submitting logout form (what its script would do), and
 * returns the URL the browser lands on: the post_logout_redirect_uri (with
 * state) without requesting it, or the provider's own "signed out" page.
 */
export async function endSessionAtProvider(browser: TestBrowser, endSessionUrl: string): Promise<string> {
  const providerOrigin = new URL(endSessionUrl).origin;
  const leavesProvider = (u: string): boolean => new URL(u).origin !== providerOrigin;
  const { response, chain } = await browser.follow(endSessionUrl, { stopAt: leavesProvider });
  let last = chain[chain.length - 1] ?? endSessionUrl;
  if (leavesProvider(last)) return last;
  const form = parseForm(response.text, response.url);
  if (response.status !== 200 || !form) throw new Error(`expected the logout page, got ${describe(response)}`);
  const confirmed = await browser.post(form.action, form.fields);
  if (!confirmed.location) throw new Error(`logout confirmation failed: ${describe(confirmed)}`);
  if (leavesProvider(confirmed.location)) return confirmed.location;
  const after = await browser.follow(confirmed.location, { stopAt: leavesProvider });
  last = after.chain[after.chain.length - 1] ?? confirmed.location;
  return last;
}
