/**
 * The sign-in pages at work: sign-in, create account, one-time tokens, Logto's automatic consent
 * for first-party apps, cancel, and the page for a sign-in that has ended.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { API_RESOURCE, API_SCOPES, buildUser, CLAIMS_BY_SCOPE, ORGANIZATION_SCOPES, ORGANIZATIONS_RESOURCE } from './clients-and-users.js';
import { randomId, type OidcModule, type ProviderInstance } from './helpers.js';
import type { TestUser } from './index.js';
import { endedPage, loginPage, registerPage, type AppLabel } from './pages.js';
import type { StoreAdapter } from './storage.js';

export interface InteractionContext {
  errors: OidcModule['errors'];
  /** The current provider instance (a key rotation replaces it). */
  provider: () => ProviderInstance;
  clientAdapter: StoreAdapter;
  usersBySub: Map<string, TestUser>;
  suspended: Set<string>;
  /** One-time tokens by value: whom each was issued for, until when, and whether it was used. */
  oneTimeTokens: Map<string, { email: string; expiresAt: number; used: boolean }>;
}

/** Adds the interaction routes and the error handler after them; call once the /oidc routes are in place. */
export function serveInteractions(app: Express, context: InteractionContext): void {
  const { errors, provider, clientAdapter, usersBySub, suspended, oneTimeTokens } = context;
  const formParser = express.urlencoded({ extended: false });

  const appsByInteraction = new Map<string, AppLabel>();

  async function appLabelOf(details: InteractionDetails): Promise<AppLabel> {
    const clientId = String(details.params.client_id);
    const metadata = await clientAdapter.find(clientId);
    let home: string | undefined;
    try {
      home = `${new URL(String(details.params.redirect_uri)).origin}/`;
    } catch {
      home = undefined;
    }
    const label = { name: typeof metadata?.client_name === 'string' ? metadata.client_name : clientId, home };
    appsByInteraction.set(details.uid, label);
    // A long-running `npm run provider` must not grow without bound; the oldest go first.
    if (appsByInteraction.size > 1000) appsByInteraction.delete(appsByInteraction.keys().next().value as string);
    return label;
  }

  /** Logto's username rule: a letter or underscore first, then letters, digits and underscores. */
  function registrationProblem(username: string, password: string, confirmPassword: string): string | undefined {
    if (!/^[A-Za-z_]\w{0,127}$/.test(username)) {
      return 'A username starts with a letter or an underscore and has only letters, digits and underscores.';
    }
    if ([...usersBySub.values()].some((u) => u.username.toLowerCase() === username.toLowerCase())) {
      return 'This username is already in use.';
    }
    // Logto's default password policy: at least 8 characters.
    if (password.length < 8) return 'The password needs at least 8 characters.';
    if (password !== confirmPassword) return 'The passwords do not match.';
    return undefined;
  }

  type InteractionDetails = Awaited<ReturnType<ProviderInstance['interactionDetails']>>;

  /** Logto auto-consents first-party apps: grant every requested scope and resource. */
  async function autoConsent(details: InteractionDetails, accountId: string): Promise<string> {
    const clientId = String(details.params.client_id);
    let grant = details.grantId ? await provider().Grant.find(details.grantId) : undefined;
    if (!grant || grant.accountId !== accountId) grant = new (provider().Grant)({ accountId, clientId });
    const requested = typeof details.params.scope === 'string' ? details.params.scope.split(' ') : [];
    grant.addOIDCScope(requested.filter((s) => s === 'openid' || s === 'offline_access' || s in CLAIMS_BY_SCOPE).join(' '));
    const rawResource = details.params.resource;
    const resources = Array.isArray(rawResource) ? rawResource.map(String) : typeof rawResource === 'string' ? [rawResource] : [];
    for (const indicator of resources) {
      const declared =
        indicator === API_RESOURCE ? (API_SCOPES as readonly string[])
          : indicator === ORGANIZATIONS_RESOURCE ? (ORGANIZATION_SCOPES as readonly string[]) : [];
      grant.addResourceScope(indicator, requested.filter((s) => declared.includes(s)).join(' '));
    }
    return grant.save();
  }

  /** first_screen=register opens the register screen, as in Logto; its links switch between the two. */
  function wantsRegister(details: InteractionDetails, screen: unknown): boolean {
    if (screen === 'register') return true;
    if (screen === 'sign_in') return false;
    return details.params.first_screen === 'register';
  }

  /**
   * Logto's one-time token sign-in: the token must be known, unused, unexpired, and issued for the
   * email in login_hint. Returns the user to sign in, or why not (shown on the login page).
   */
  function redeemOneTimeToken(details: InteractionDetails): TestUser | { problem: string } {
    const value = details.params.one_time_token;
    const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint.toLowerCase() : '';
    const issued = typeof value === 'string' ? oneTimeTokens.get(value) : undefined;
    if (!issued || issued.used || issued.expiresAt <= Date.now() || issued.email !== hint) {
      return { problem: 'The one-time token is invalid, expired or already used.' };
    }
    issued.used = true;
    const user = [...usersBySub.values()].find((u) => u.email?.toLowerCase() === issued.email);
    if (!user || suspended.has(user.sub)) return { problem: 'No active account has this email address.' };
    return user;
  }

  app.get('/interaction/:uid', async (req: Request, res: Response) => {
    const details = await provider().interactionDetails(req, res);
    if (details.prompt.name === 'login' && details.params.one_time_token !== undefined) {
      const redeemed = redeemOneTimeToken(details);
      if ('problem' in redeemed) {
        const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : '';
        res.type('html').send(loginPage(details.uid, await appLabelOf(details), hint, redeemed.problem));
        return;
      }
      const grantId = await autoConsent(details, redeemed.sub);
      await provider().interactionFinished(req, res, { login: { accountId: redeemed.sub }, consent: { grantId } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name === 'login') {
      const app = await appLabelOf(details);
      if (wantsRegister(details, req.query.screen)) {
        res.type('html').send(registerPage(details.uid, app, ''));
        return;
      }
      const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : '';
      res.type('html').send(loginPage(details.uid, app, hint));
      return;
    }
    const accountId = details.session?.accountId;
    if (!accountId) throw new Error('consent prompt without a session');
    const grantId = await autoConsent(details, accountId);
    await provider().interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  });

  app.post('/interaction/:uid/login', formParser, async (req: Request, res: Response) => {
    const details = await provider().interactionDetails(req, res);
    const form = (req.body ?? {}) as Record<string, unknown>;
    const username = typeof form.username === 'string' ? form.username : '';
    const password = typeof form.password === 'string' ? form.password : '';
    const user = [...usersBySub.values()].find((u) => u.username === username && u.password === password);
    if (!user || suspended.has(user.sub)) {
      res.type('html').send(loginPage(details.uid, await appLabelOf(details), username, 'Incorrect username or password.'));
      return;
    }
    const grantId = await autoConsent(details, user.sub);
    await provider().interactionFinished(
      req,
      res,
      { login: { accountId: user.sub }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  });

  app.post('/interaction/:uid/register', formParser, async (req: Request, res: Response) => {
    const details = await provider().interactionDetails(req, res);
    const form = (req.body ?? {}) as Record<string, unknown>;
    const field = (name: string): string => (typeof form[name] === 'string' ? form[name] : '');
    const username = field('username').trim();
    const problem = registrationProblem(username, field('password'), field('confirmPassword'));
    if (problem) {
      res.type('html').send(registerPage(details.uid, await appLabelOf(details), username, problem));
      return;
    }
    // A new user as Logto creates one from a username and password: no profile, no roles, no organizations.
    const user = buildUser({
      sub: randomId(12),
      username,
      password: field('password'),
      name: null,
      picture: null,
      email: null,
      phone: null,
      roles: [],
      organizationRoles: {},
      customData: {},
      createdAt: Date.now(),
    });
    usersBySub.set(user.sub, user);
    // Registering signs the user in and continues to the app, as in Logto.
    const grantId = await autoConsent(details, user.sub);
    await provider().interactionFinished(
      req,
      res,
      { login: { accountId: user.sub }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  });

  app.post('/interaction/:uid/abort', async (req: Request, res: Response) => {
    await provider().interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
  });

  /**
   * Quiet error handler (Express would print the stack). oidc-provider errors keep their status.
   * An interaction that is gone gets a page that sends the person back to the app (see endedPage).
   */
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return;
    const status = (err as { statusCode?: unknown }).statusCode;
    const description = (err as { error_description?: unknown }).error_description;
    const detail = typeof description === 'string' ? description : err instanceof Error ? err.message : String(err);
    const uid = /^\/interaction\/([^/]+)/.exec(req.path)?.[1];
    const known = uid === undefined ? undefined : appsByInteraction.get(uid);
    res.status(typeof status === 'number' ? status : 500).type('html').send(endedPage(known, detail, err instanceof errors.SessionNotFound));
  });
}
