/**
 * The example app: Express + Passport + express-session + passport-logto, page by page what
 * Logto's quick-starts show. `createExampleApp` only builds the app; start.ts listens and
 * decides which Logto it talks to.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import session from 'express-session';
import passport from 'passport';
import { LogtoError, LogtoStrategy, UserScope, type LogtoAuthenticateOptions, type LogtoUser } from '../lib/index.js';
import {
  apiPage,
  errorPage,
  homePage,
  idTokenPage,
  organizationApiPage,
  organizationPage,
  organizationsPage,
  organizationSwitcherPage,
  refreshPage,
  signInCancelledPage,
  userInfoPage,
  type ErrorView,
  type OrganizationView,
  type PageContext,
} from './views.js';

export interface ExampleSettings {
  /** Where browsers reach this app, such as `http://127.0.0.1:3000`; redirect URIs derive from it. */
  baseUrl: string;
  /** The Logto endpoint, such as `https://your-tenant.logto.app`. */
  endpoint: string;
  appId: string;
  appSecret: string;
  /** An API resource indicator to get access tokens for. */
  resource?: string | undefined;
  /** Extra scopes: the API and organization permissions to ask for. */
  scopes?: readonly string[];
  sessionSecret: string;
  /** For the footer: which Logto this is. */
  logtoLabel?: string;
  /** The bundled provider's demo account, shown on the home page. */
  demoAccount?: { username: string; password: string } | undefined;
}

/** The scopes the quick-start pages need; `urn:logto:scope:organizations` also brings organization tokens. */
const exampleScopes = [
  UserScope.Email,
  UserScope.Phone,
  UserScope.CustomData,
  UserScope.Identities,
  UserScope.Roles,
  UserScope.Organizations,
  UserScope.OrganizationRoles,
];

export function createExampleApp(settings: ExampleSettings): Express {
  const baseUrl = settings.baseUrl.replace(/\/+$/, '');
  const logto = new LogtoStrategy({
    endpoint: settings.endpoint,
    appId: settings.appId,
    appSecret: settings.appSecret,
    callbackURL: `${baseUrl}/callback`,
    postLogoutRedirectUri: `${baseUrl}/`,
    scopes: [...exampleScopes, ...(settings.scopes ?? [])],
    resources: settings.resource ? [settings.resource] : [],
  });

  // An Authenticator of its own rather than the `passport` singleton, so that tests can run
  // several copies of the app in one process.
  const authenticator = new passport.Passport();
  authenticator.use(logto);
  // The user object is a few profile claims (no tokens: passport-logto keeps those apart), so
  // the whole of it fits in the session and no user database is needed.
  authenticator.serializeUser((user, done) => done(null, user));
  authenticator.deserializeUser((user: Express.User, done) => done(null, user));

  const app = express();
  app.disable('x-powered-by');
  app.use(
    session({
      name: 'example.sid',
      secret: settings.sessionSecret,
      resave: false,
      saveUninitialized: false,
      // 'auto': Secure over HTTPS, and still usable over plain http://127.0.0.1 in development.
      cookie: { httpOnly: true, sameSite: 'lax', secure: 'auto' },
    }),
  );
  // Cookies belong to a host name: a visit to localhost would lose its session on the way back
  // from Logto to 127.0.0.1 (or the other way round), so send local visits to the one base URL.
  const base = new URL(baseUrl);
  const loopbackNames = new Set(['localhost', '127.0.0.1', '[::1]']);
  if (loopbackNames.has(base.hostname)) {
    app.use((req, res, next) => {
      if (req.headers.host !== base.host && loopbackNames.has(req.hostname)) res.redirect(`${base.origin}${req.originalUrl}`);
      else next();
    });
  }
  app.use(authenticator.initialize());
  app.use(authenticator.session());
  // A session whose sign-in has ended (here or on another instance, or by Logto) is signed out.
  app.use(logto.session());
  // The sign-out form's answer redirects to Logto's end-session endpoint, which form-action must allow too.
  const formTargets = `'self' ${new URL(settings.endpoint).origin}`;
  app.use((_req, res, next) => {
    // Pages show claims: keep them out of caches, and allow no scripts at all.
    res.set({
      'Cache-Control': 'no-store',
      'Content-Security-Policy': `default-src 'none'; style-src 'unsafe-inline'; form-action ${formTargets}; base-uri 'none'; frame-ancestors 'none'`,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'same-origin',
    });
    next();
  });

  const logtoLabel = settings.logtoLabel ?? settings.endpoint;
  const contextOf = (req: Request): PageContext => {
    const user = req.user as LogtoUser | undefined;
    const signedIn = user !== undefined && logto.client(req).isAuthenticated();
    return { userName: signedIn ? displayName(user) : undefined, logtoLabel };
  };
  const send = (res: Response, page: string, status = 200): void => {
    res.status(status).type('html').send(page);
  };
  const signedIn = logto.authenticated({ redirect: '/sign-in' });

  app.get('/', (req, res) => {
    send(res, homePage(contextOf(req), { demoAccount: settings.demoAccount }));
  });

  const signUp: LogtoAuthenticateOptions = { firstScreen: 'register' };
  app.get('/sign-in', authenticator.authenticate(logto.name));
  app.get('/sign-up', authenticator.authenticate(logto.name, signUp));
  // A custom callback rather than failureRedirect/failureMessage, which keep only the message:
  // the failure's LogtoError tells a person who pressed Cancel at Logto from a sign-in that broke.
  app.get('/callback', (req, res, next) => {
    authenticator.authenticate(logto.name, (error: unknown, user: Express.User | false | undefined, failure: unknown) => {
      if (error) return next(error);
      if (!user) {
        const cancelled = failure instanceof LogtoError && failure.code === 'authorization_failed' && failure.oauthError === 'access_denied';
        const message = failure instanceof Error ? failure.message : 'The sign-in did not complete.';
        failureStore(req).signInFailure = { cancelled, message };
        // A redirect, so that reloading the page does not replay the callback URL.
        return res.redirect('/sign-in-failed');
      }
      req.logIn(user, (logInError?: unknown) => {
        if (logInError) return next(logInError);
        // What successReturnToOrRedirect does: passport-logto leaves the checked return path here.
        const session = req.session as unknown as { returnTo?: string };
        const target = session.returnTo ?? '/';
        delete session.returnTo;
        res.redirect(target);
      });
    })(req, res, next);
  });
  app.get('/sign-in-failed', (req, res) => {
    // Shown once: a reload or a later visit gets the generic text.
    const store = failureStore(req);
    const failure = store.signInFailure;
    delete store.signInFailure;
    if (failure?.cancelled) {
      send(res, signInCancelledPage(contextOf(req)));
      return;
    }
    send(res, errorPage(contextOf(req), {
      status: 401,
      title: 'Sign-in failed',
      message: failure?.message ?? 'The sign-in did not complete.',
      action: { href: '/sign-in', label: 'Try again' },
    }), 401);
  });
  // A form posts it (see views.ts): a GET could be set off by a link or an image elsewhere.
  app.post('/sign-out', logto.signOut());

  app.get('/protected', signedIn, (req, res) => {
    send(res, idTokenPage(contextOf(req), req.logto!.getIdTokenClaims()));
  });

  // refresh() asks Logto for new tokens now, e.g. after the user's profile or roles changed;
  // the sign-in's ID token is replaced in its token record. A POST: it changes state.
  app.get('/protected/refresh', signedIn, (req, res) => {
    send(res, refreshPage(contextOf(req), { claims: req.logto!.getIdTokenClaims(), changed: undefined }));
  });
  app.post('/protected/refresh', signedIn, async (req, res) => {
    const client = req.logto!;
    const before: Readonly<Record<string, unknown>> = client.getIdTokenClaims();
    await client.refresh();
    const claims: Readonly<Record<string, unknown>> = client.getIdTokenClaims();
    const names = new Set([...Object.keys(before), ...Object.keys(claims)]);
    const changed = [...names].filter((name) => JSON.stringify(before[name]) !== JSON.stringify(claims[name]));
    send(res, refreshPage(contextOf(req), { claims, changed }));
  });

  app.get('/protected/userinfo', logto.authenticated({ redirect: '/sign-in', fetchUserInfo: true }), (req, res) => {
    send(res, userInfoPage(contextOf(req), req.logto!.userInfo ?? {}));
  });

  app.get('/protected/api', signedIn, async (req, res) => {
    const resource = settings.resource;
    if (!resource) {
      send(res, apiPage(contextOf(req), { resource: undefined }));
      return;
    }
    const claims = await req.logto!.getAccessTokenClaims(resource);
    send(res, apiPage(contextOf(req), { resource, claims }));
  });

  app.get('/protected/organizations', logto.authenticated({ redirect: '/sign-in', fetchUserInfo: true }), async (req, res) => {
    // The lookup form submits ?id=...; give that organization its own page.
    const wanted = req.query.id;
    if (typeof wanted === 'string' && wanted.trim() !== '') {
      res.redirect(`/protected/organizations/${encodeURIComponent(wanted.trim())}`);
      return;
    }
    const client = req.logto!;
    // userinfo has names and descriptions; the ID token only IDs (and a tenant may leave them out).
    const fromUserInfo = client.userInfo?.organization_data;
    const listed = fromUserInfo
      ?? (client.getIdTokenClaims().organizations ?? []).map((id) => ({ id, name: undefined, description: undefined }));
    const organizations: OrganizationView[] = [];
    // One after another: each may need a refresh, and passport-logto runs those one at a time anyway.
    for (const organization of listed) {
      let token: OrganizationView['token'];
      try {
        token = { claims: await client.getOrganizationTokenClaims(organization.id) };
      } catch (error) {
        token = { problem: describeError(error, organization.id).message };
      }
      organizations.push({ id: organization.id, name: organization.name ?? undefined, description: organization.description, token });
    }
    send(res, organizationsPage(contextOf(req), organizations, fromUserInfo ? 'userinfo' : 'id_token'));
  });

  app.get('/protected/organizations/:id', signedIn, async (req, res) => {
    const id = String(req.params.id);
    const client = req.logto!;
    let claims;
    try {
      claims = await client.getOrganizationTokenClaims(id);
    } catch (error) {
      // Expected for an organization the user is not in: a page that says so, not a 500.
      const view = describeError(error, id);
      send(res, errorPage(contextOf(req), view), view.status);
      return;
    }
    const idClaims = client.getIdTokenClaims();
    const roles = (idClaims.organization_roles ?? []).filter((entry) => entry.startsWith(`${id}:`)).map((entry) => entry.slice(id.length + 1));
    send(res, organizationPage(contextOf(req), { id, roles, claims, resource: settings.resource }));
  });

  // The organization switcher: the user picks the organization to work in, the session remembers
  // it, and pages use that organization's token. The list comes from userinfo, which is current;
  // the ID token's organizations are as they were at sign-in.
  app.get('/protected/organization-switcher', signedIn, async (req, res) => {
    const client = req.logto!;
    const organizations = await client.fetchOrganizations();
    const store = switcherStore(req);
    let current: Parameters<typeof organizationSwitcherPage>[1]['current'];
    const chosen = organizations.find((organization) => organization.id === store.currentOrganization);
    if (chosen) {
      try {
        current = { organization: chosen, claims: await client.getOrganizationTokenClaims(chosen.id) };
      } catch (error) {
        current = { organization: chosen, problem: describeError(error, chosen.id).message };
      }
    } else if (store.currentOrganization !== undefined) {
      // No longer a member: forget it rather than show another organization's data.
      delete store.currentOrganization;
    }
    send(res, organizationSwitcherPage(contextOf(req), { organizations, current }));
  });
  app.post('/protected/organization-switcher', signedIn, express.urlencoded({ extended: false }), async (req, res) => {
    const wanted = (req.body as Record<string, unknown> | undefined)?.organization;
    const organizations = await req.logto!.fetchOrganizations();
    if (typeof wanted !== 'string' || !organizations.some((organization) => organization.id === wanted)) {
      const view = describeError(
        new LogtoError('not_organization_member', 'Not one of the user\'s organizations.'),
        typeof wanted === 'string' ? wanted : '',
      );
      send(res, errorPage(contextOf(req), view), view.status);
      return;
    }
    switcherStore(req).currentOrganization = wanted;
    // Post/redirect/get: a reload shows the page instead of sending the form again.
    res.redirect(303, '/protected/organization-switcher');
  });

  // An organization-scoped API token: the API resource's token, narrowed to the user's roles in one
  // organization, with an organization_id claim (Logto's organization-level API permissions).
  app.get('/protected/organizations/:id/api', signedIn, async (req, res) => {
    const id = String(req.params.id);
    const resource = settings.resource;
    if (!resource) {
      send(res, apiPage(contextOf(req), { resource: undefined }));
      return;
    }
    let claims;
    try {
      claims = await req.logto!.getAccessTokenClaims(resource, id);
    } catch (error) {
      const view = describeError(error, id);
      send(res, errorPage(contextOf(req), view), view.status);
      return;
    }
    send(res, organizationApiPage(contextOf(req), { id, resource, claims }));
  });

  app.use((req, res) => {
    send(res, errorPage(contextOf(req), { status: 404, title: 'Page not found', message: `There is no page at ${req.path}.` }), 404);
  });

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const view = describeError(error);
    if (view.status >= 500) console.error(error);
    if (res.headersSent) return;
    send(res, errorPage(contextOf(req), view), view.status);
  });

  return app;
}

interface FailureStore {
  signInFailure?: { cancelled: boolean; message: string };
}

function failureStore(req: Request): FailureStore {
  return req.session as unknown as FailureStore;
}

interface SwitcherStore {
  /** The organization the user chose to work in. */
  currentOrganization?: string;
}

function switcherStore(req: Request): SwitcherStore {
  return req.session as unknown as SwitcherStore;
}

function displayName(user: LogtoUser): string {
  for (const claim of ['name', 'username', 'email'] as const) {
    const value = user[claim];
    if (typeof value === 'string' && value !== '') return value;
  }
  return user.id;
}

/** Turns a failure into a page a person can act on; LogtoError codes say what happened. */
export function describeError(error: unknown, organizationId?: string): ErrorView {
  const signInAgain = { href: '/sign-in', label: 'Sign in again' };
  if (!(error instanceof LogtoError)) {
    return { status: 500, title: 'Something went wrong', message: 'The app hit an unexpected error; the server log has the details.' };
  }
  switch (error.code) {
    case 'not_authenticated':
      return { status: 401, title: 'Please sign in again', message: 'Your Logto sign-in has ended or expired.', action: signInAgain };
    case 'not_organization_member':
      return {
        status: 403,
        title: 'Not a member of this organization',
        message: `You are not a member of the organization "${organizationId ?? ''}", so Logto will not issue a token for it.`,
        action: { href: '/protected/organizations', label: 'Your organizations' },
      };
    case 'token_request_failed':
      return {
        status: 403,
        title: 'Logto refused the token',
        message: `Logto answered ${error.oauthError ?? 'with an error'}: ${error.message}`,
        action: signInAgain,
      };
    case 'invalid_resource':
    case 'missing_scope_organizations':
      // Configuration mistakes; the library's message says what to change.
      return { status: 400, title: 'This token cannot be had', message: error.message, action: signInAgain };
    case 'invalid_client':
    case 'invalid_redirect_uri':
    case 'invalid_endpoint':
    case 'invalid_target':
      // Set-up mistakes: trying again will not help; the message says what to change.
      return { status: 500, title: 'The app is not set up right for Logto', message: error.message };
    case 'provider_unreachable':
    case 'provider_timeout':
    case 'provider_error':
    case 'invalid_provider_response':
      return { status: 502, title: 'Logto is not answering', message: `${error.message} Try again in a moment.` };
    default:
      return { status: 500, title: 'Something went wrong', message: error.message };
  }
}
