/**
 * The example's pages: plain server-rendered HTML. Every value goes through the `html` template
 * tag, which escapes it, so claims and error text can never inject markup.
 */

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (character) => entities[character] ?? character);
}

/** Markup that is already safe; the only kind of value that `html` inserts as it is. */
export class Html {
  constructor(readonly markup: string) {}
  toString(): string {
    return this.markup;
  }
}

function render(value: unknown): string {
  if (value instanceof Html) return value.markup;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** Template tag: escapes each interpolated value unless it is `Html` (or a list of them). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let markup = strings[0] ?? '';
  values.forEach((value, index) => {
    markup += render(value) + (strings[index + 1] ?? '');
  });
  return new Html(markup);
}

// ---------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------

/** What every page needs to know about the request and the app. */
export interface PageContext {
  /** The signed-in user's display name; absent when signed out. */
  userName: string | undefined;
  /** Which Logto this app talks to, for the footer. */
  logtoLabel: string;
}

type NavKey = 'home' | 'claims' | 'refresh' | 'userinfo' | 'api' | 'organizations' | 'switcher';

const navigation: ReadonlyArray<{ key: NavKey; href: string; label: string }> = [
  { key: 'home', href: '/', label: 'Home' },
  { key: 'claims', href: '/protected', label: 'ID token' },
  { key: 'refresh', href: '/protected/refresh', label: 'Refresh' },
  { key: 'userinfo', href: '/protected/userinfo', label: 'User info' },
  { key: 'api', href: '/protected/api', label: 'API resource' },
  { key: 'organizations', href: '/protected/organizations', label: 'Organizations' },
  { key: 'switcher', href: '/protected/organization-switcher', label: 'Switch organization' },
];

const stylesheet = `
  :root { --accent: #5d34f2; --accent-soft: #f1edff; --muted: #6b6b76; --border: #e3e3e8; --danger: #b00020; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; background: #f5f5f7; }
  a { color: var(--accent); }
  header { background: #fff; border-bottom: 1px solid var(--border); }
  .bar { max-width: 60rem; margin: 0 auto; padding: .8rem 1.25rem; display: flex; align-items: center; gap: 1.25rem; flex-wrap: wrap; }
  .brand { font-weight: 650; color: inherit; text-decoration: none; margin-right: auto; }
  nav { display: flex; gap: 1rem; flex-wrap: wrap; font-size: .95rem; }
  nav a { text-decoration: none; }
  nav a[aria-current="page"] { font-weight: 600; text-decoration: underline; text-underline-offset: .3em; }
  nav form { display: inline; margin: 0; }
  .link { background: none; border: 0; padding: 0; font: inherit; color: var(--accent); cursor: pointer; }
  main { max-width: 60rem; margin: 2rem auto; padding: 0 1.25rem; }
  .card { background: #fff; border: 1px solid var(--border); border-radius: 10px; padding: 1.5rem; margin-bottom: 1.25rem; }
  .card.error { border-left: 4px solid var(--danger); }
  h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
  h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
  p { margin: .5rem 0; }
  .muted { color: var(--muted); }
  .actions { display: flex; gap: .75rem; flex-wrap: wrap; margin-top: 1.25rem; }
  .button { display: inline-block; padding: .55rem 1.1rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; text-decoration: none; font: inherit; font-weight: 500; cursor: pointer; }
  .button.secondary { background: #fff; color: var(--accent); }
  .notice { background: var(--accent-soft); border-radius: 6px; padding: .75rem 1rem; margin-top: 1rem; }
  table { width: 100%; border-collapse: collapse; font-size: .9rem; }
  th, td { text-align: left; vertical-align: top; padding: .45rem .6rem; border-top: 1px solid var(--border); }
  th { width: 13rem; font-weight: 500; white-space: nowrap; }
  th, td, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
  td { overflow-wrap: anywhere; }
  .when { font-family: system-ui, sans-serif; color: var(--muted); margin-left: .5rem; word-break: normal; }
  code { background: #f0f0f3; padding: .05rem .3rem; border-radius: 4px; font-size: .9em; }
  .tag { display: inline-block; background: var(--accent-soft); color: var(--accent); border-radius: 999px; padding: .05rem .65rem; margin: 0 .3rem .3rem 0; font-family: ui-monospace, monospace; font-size: .85rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
  dt { font-weight: 500; } dd { margin: 0; font-family: ui-monospace, monospace; }
  form.lookup { display: flex; gap: .5rem; flex-wrap: wrap; margin-top: .75rem; }
  form.lookup input { flex: 1 1 14rem; padding: .5rem .6rem; font: inherit; border: 1px solid var(--border); border-radius: 6px; }
  .problem { color: var(--danger); }
  ul.switcher { list-style: none; padding: 0; margin: .75rem 0 0; }
  ul.switcher li { margin-bottom: .6rem; }
  ul.switcher li p { margin: .1rem 0 0 1.6rem; }
  fieldset { border: 0; padding: 0; margin: 0; }
  legend { font-weight: 500; }
  footer { max-width: 60rem; margin: 0 auto 2rem; padding: 0 1.25rem; color: var(--muted); font-size: .85rem; }
`;

/** Sign-out is a POST (a form), so that a link or an image elsewhere cannot sign the user out. */
function signOutForm(style: 'link' | 'button', id: string): Html {
  return html`<form method="post" action="/sign-out"><button type="submit" id="${id}" class="${style === 'link' ? 'link' : 'button secondary'}">Sign out</button></form>`;
}

function layout(context: PageContext, title: string, current: NavKey | undefined, body: Html): string {
  const signedIn = context.userName !== undefined;
  const links = signedIn ? navigation : navigation.filter((item) => item.key === 'home');
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · passport-logto example</title>
<style>${new Html(stylesheet)}</style>
</head>
<body>
<header><div class="bar">
  <a class="brand" href="/">passport-logto example</a>
  <nav>
    ${links.map((item) => html`<a href="${item.href}"${item.key === current ? new Html(' aria-current="page"') : ''}>${item.label}</a>`)}
    ${signedIn ? signOutForm('link', 'sign-out') : html`<a id="nav-sign-in" href="/sign-in">Sign in</a>`}
  </nav>
</div></header>
<main>
${body}
</main>
<footer>Logto: ${context.logtoLabel}</footer>
</body>
</html>
`.markup;
}

// ---------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------

// Token times are in seconds; Logto's created_at / updated_at are in milliseconds.
const secondClaims = new Set(['exp', 'iat', 'nbf', 'auth_time']);
const millisecondClaims = new Set(['created_at', 'updated_at']);

function readableTime(milliseconds: number): string {
  return new Date(milliseconds).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

function claimValue(name: string, value: unknown): Html {
  if (value === null) return html`<span class="muted">null</span>`;
  if (typeof value === 'number' && secondClaims.has(name)) return html`${value}<span class="when">${readableTime(value * 1000)}</span>`;
  if (typeof value === 'number' && millisecondClaims.has(name)) return html`${value}<span class="when">${readableTime(value)}</span>`;
  if (typeof value === 'object') return html`${JSON.stringify(value)}`;
  return html`${String(value)}`;
}

/** A table of claims, one row per claim; `data-claim` lets tests and readers find a row. */
export function claimsTable(claims: Readonly<Record<string, unknown>>): Html {
  const rows = Object.entries(claims).map(
    ([name, value]) => html`<tr data-claim="${name}"><th>${name}</th><td>${claimValue(name, value)}</td></tr>`,
  );
  return html`<table class="claims">${rows}</table>`;
}

function scopeTags(scope: unknown): Html {
  const scopes = typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
  if (scopes.length === 0) return html`<span class="muted">none</span>`;
  return html`${scopes.map((item) => html`<span class="tag">${item}</span>`)}`;
}

// ---------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------

export interface HomeView {
  /** The demo account of the bundled provider, shown to signed-out visitors. */
  demoAccount: { username: string; password: string } | undefined;
}

export function homePage(context: PageContext, view: HomeView): string {
  if (context.userName === undefined) {
    const demo = view.demoAccount;
    return layout(context, 'Home', 'home', html`<section class="card">
  <h1>Welcome</h1>
  <p>This app signs you in with Logto through <code>passport-logto</code>, then shows what the session can do:
  the ID token claims, the user info, an API resource token and organization tokens.</p>
  <div class="actions">
    <a class="button" id="sign-in" href="/sign-in">Sign in</a>
    <a class="button secondary" id="sign-up" href="/sign-up">Create an account</a>
  </div>
  ${demo ? html`<p class="notice" id="demo-account">Demo account of the bundled provider: username <code>${demo.username}</code>, password <code>${demo.password}</code></p>` : ''}
</section>`);
  }
  return layout(context, 'Home', 'home', html`<section class="card">
  <h1>Hello, <span id="user-name">${context.userName}</span></h1>
  <p>You are signed in. Each page below is protected by <code>logto.authenticated()</code> and reads from <code>req.logto</code>.</p>
  <ul>
    <li><a href="/protected">ID token claims</a>: <code>getIdTokenClaims()</code></li>
    <li><a href="/protected/refresh">Refresh</a>: <code>refresh()</code>, then the new ID token claims</li>
    <li><a href="/protected/userinfo">User info</a>: <code>fetchUserInfo()</code>, with custom data</li>
    <li><a href="/protected/api">API resource</a>: <code>getAccessToken(resource)</code></li>
    <li><a href="/protected/organizations">Organizations</a>: <code>getOrganizationTokenClaims(id)</code>, and per organization
    an organization-scoped API token: <code>getAccessToken(resource, organizationId)</code></li>
    <li><a href="/protected/organization-switcher">Organization switcher</a>: <code>fetchOrganizations()</code>, and the chosen
    organization's token</li>
  </ul>
  <div class="actions">${signOutForm('button', 'sign-out-button')}</div>
</section>`);
}

export function idTokenPage(context: PageContext, claims: Readonly<Record<string, unknown>>): string {
  return layout(context, 'ID token claims', 'claims', html`<section class="card">
  <h1>ID token claims</h1>
  <p class="muted">Verified at sign-in and kept with this sign-in's tokens, out of the session (which holds only a reference to them): <code>req.logto.getIdTokenClaims()</code>.</p>
  ${claimsTable(claims)}
</section>`);
}

export function userInfoPage(context: PageContext, userInfo: Readonly<Record<string, unknown>>): string {
  const customData = userInfo.custom_data;
  const entries = customData !== null && typeof customData === 'object' ? Object.entries(customData) : [];
  return layout(context, 'User info', 'userinfo', html`<section class="card">
  <h1>User info</h1>
  <p class="muted">Fetched from Logto's userinfo endpoint: <code>req.logto.fetchUserInfo()</code>, or
  <code>logto.authenticated({ fetchUserInfo: true })</code> as here. Only userinfo returns custom data, identities and organization data.</p>
</section>
<section class="card" id="custom-data">
  <h2>Custom data</h2>
  ${entries.length === 0
    ? html`<p class="muted">None. Set it in the Logto Console (user details) and ask for the <code>custom_data</code> scope.</p>`
    : html`<dl>${entries.map(([key, value]) => html`<dt>${key}</dt><dd data-custom="${key}">${typeof value === 'string' ? value : JSON.stringify(value)}</dd>`)}</dl>`}
</section>
<section class="card">
  <h2>All claims</h2>
  ${claimsTable(userInfo)}
</section>`);
}

export type ApiView =
  | { resource: string; claims: Readonly<Record<string, unknown>> }
  | { resource: undefined };

export function apiPage(context: PageContext, view: ApiView): string {
  if (view.resource === undefined) {
    return layout(context, 'API resource', 'api', html`<section class="card">
  <h1>API resource</h1>
  <p id="no-resource">No API resource is configured. Create one in the Logto Console, then start the example with
  <code>LOGTO_RESOURCE=&lt;its identifier&gt;</code> and its permissions in <code>LOGTO_SCOPES</code>.</p>
</section>`);
  }
  return layout(context, 'API resource', 'api', html`<section class="card">
  <h1>API resource token</h1>
  <p class="muted">An access token for <code id="resource">${view.resource}</code>, from the refresh token:
  <code>req.logto.getAccessToken(resource)</code>. Send it to your API as <code>Authorization: Bearer …</code>;
  the API checks its audience and scopes.</p>
  <p>Scopes granted: <span id="scopes">${scopeTags(view.claims.scope)}</span></p>
  ${claimsTable(view.claims)}
</section>`);
}

export interface OrganizationView {
  id: string;
  name: string | undefined;
  description: string | null | undefined;
  /** The organization token's claims, or why there are none. */
  token: { claims: Readonly<Record<string, unknown>> } | { problem: string };
}

function organizationHeading(organization: { id: string; name: string | undefined }): Html {
  return organization.name ? html`${organization.name} <span class="muted">(${organization.id})</span>` : html`${organization.id}`;
}

function organizationToken(token: OrganizationView['token']): Html {
  if ('problem' in token) return html`<p class="problem">${token.problem}</p>`;
  return html`<p>Scopes granted: ${scopeTags(token.claims.scope)}</p>${claimsTable(token.claims)}`;
}

export function organizationsPage(context: PageContext, organizations: readonly OrganizationView[], source: 'userinfo' | 'id_token'): string {
  const lookup = html`<section class="card">
  <h2>Another organization</h2>
  <p class="muted">Ask for the token of any organization ID; Logto refuses one you are not a member of.</p>
  <form class="lookup" method="get" action="/protected/organizations">
    <input type="text" name="id" placeholder="Organization ID" aria-label="Organization ID" required>
    <button class="button" type="submit">Get token</button>
  </form>
</section>`;
  const intro = html`<section class="card">
  <h1>Organizations</h1>
  <p class="muted">Your organizations, from ${source === 'userinfo' ? html`userinfo's <code>organization_data</code>` : html`the ID token's <code>organizations</code> claim`},
  each with its organization token: <code>req.logto.getOrganizationTokenClaims(id)</code>. Its audience names the organization,
  and its scopes are what your organization roles grant. To pick one to work in, use the
  <a id="to-switcher" href="/protected/organization-switcher">organization switcher</a>.</p>
  ${organizations.length === 0 ? html`<p id="no-organizations">You are not a member of any organization.</p>` : ''}
</section>`;
  const sections = organizations.map((organization) => html`<section class="card organization" data-organization="${organization.id}">
  <h2><a href="/protected/organizations/${encodeURIComponent(organization.id)}">${organizationHeading(organization)}</a></h2>
  ${organization.description ? html`<p class="muted">${organization.description}</p>` : ''}
  ${organizationToken(organization.token)}
</section>`);
  return layout(context, 'Organizations', 'organizations', html`${intro}${sections}${lookup}`);
}

export function organizationPage(
  context: PageContext,
  organization: { id: string; roles: readonly string[]; claims: Readonly<Record<string, unknown>>; resource: string | undefined },
): string {
  return layout(context, `Organization ${organization.id}`, 'organizations', html`<section class="card organization" data-organization="${organization.id}">
  <h1>Organization ${organization.id}</h1>
  <p>Your roles: ${organization.roles.length === 0 ? html`<span class="muted">unknown (ask for the organization roles scope)</span>` : organization.roles.map((role) => html`<span class="tag">${role}</span>`)}</p>
  <p>Scopes granted: ${scopeTags(organization.claims.scope)}</p>
  ${claimsTable(organization.claims)}
  <div class="actions">
    ${organization.resource ? html`<a class="button" id="organization-api" href="/protected/organizations/${encodeURIComponent(organization.id)}/api">API token for this organization</a>` : ''}
    <a class="button secondary" href="/protected/organizations">All organizations</a>
  </div>
</section>`);
}

export function organizationApiPage(context: PageContext, view: { id: string; resource: string; claims: Readonly<Record<string, unknown>> }): string {
  return layout(context, `API token for ${view.id}`, 'organizations', html`<section class="card" data-organization-api="${view.id}">
  <h1>API token for organization ${view.id}</h1>
  <p class="muted">An organization-scoped token for <code id="resource">${view.resource}</code>:
  <code>req.logto.getAccessToken(resource, organizationId)</code>. Its scopes are what your roles in this organization
  grant for the API, and its <code>organization_id</code> claim tells the API which organization the request is for.</p>
  <p>Organization: <code id="organization-id">${String(view.claims.organization_id ?? '')}</code></p>
  <p>Scopes granted: <span id="scopes">${scopeTags(view.claims.scope)}</span></p>
  ${claimsTable(view.claims)}
  <div class="actions"><a class="button secondary" href="/protected/organizations/${encodeURIComponent(view.id)}">Back to the organization</a></div>
</section>`);
}

export interface OrganizationSwitcherView {
  organizations: ReadonlyArray<{ id: string; name: string; description: string | null; roles: readonly string[] }>;
  /** The organization chosen earlier in this session, with its token's claims or why there are none. */
  current:
    | ({ organization: { id: string; name: string } } & ({ claims: Readonly<Record<string, unknown>> } | { problem: string }))
    | undefined;
}

export function organizationSwitcherPage(context: PageContext, view: OrganizationSwitcherView): string {
  const current = view.current;
  const list = view.organizations.length === 0
    ? html`<p id="no-organizations">You are not a member of any organization.</p>`
    : html`<form method="post" action="/protected/organization-switcher" id="switcher">
  <fieldset>
  <legend>Work in</legend>
  <ul class="switcher">${view.organizations.map((organization) => html`<li data-switch="${organization.id}">
    <label><input type="radio" name="organization" value="${organization.id}"${organization.id === current?.organization.id ? new Html(' checked') : ''}>
    <strong>${organization.name}</strong> <span class="muted">(${organization.id})</span>
    ${organization.roles.map((role) => html`<span class="tag">${role}</span>`)}</label>
    ${organization.description ? html`<p class="muted">${organization.description}</p>` : ''}
  </li>`)}</ul>
  </fieldset>
  <button class="button" type="submit" id="switch">Switch organization</button>
</form>`;
  const chosen = current === undefined
    ? html`<p class="muted" id="no-current">No organization chosen yet.</p>`
    : html`<section class="card organization" id="current" data-organization="${current.organization.id}">
  <h2>Working in <span id="current-name">${current.organization.name}</span></h2>
  ${'problem' in current
    ? html`<p class="problem">${current.problem}</p>`
    : html`<p class="muted">Its organization token, <code>req.logto.getOrganizationTokenClaims(id)</code>: what an API of this organization would receive.</p>
  <p>Scopes granted: ${scopeTags(current.claims.scope)}</p>
  ${claimsTable(current.claims)}`}
</section>`;
  return layout(context, 'Organization switcher', 'switcher', html`<section class="card">
  <h1>Organization switcher</h1>
  <p class="muted">Your organizations as Logto knows them now, from userinfo: <code>await req.logto.fetchOrganizations()</code>
  (<code>req.logto.getOrganizations()</code> gives the same from the ID token, without names). The one you choose is kept in the session.</p>
  ${list}
</section>
${current === undefined ? html`<section class="card">${chosen}</section>` : chosen}`);
}

export function refreshPage(context: PageContext, view: { claims: Readonly<Record<string, unknown>>; changed: readonly string[] | undefined }): string {
  const outcome = view.changed === undefined
    ? html`<p class="muted">These are the claims of this sign-in's ID token now.</p>`
    : html`<p class="notice" id="refreshed">Refreshed. Changed claims:
  <span id="changed">${view.changed.length === 0 ? html`<span class="muted">none</span>` : view.changed.map((name) => html`<span class="tag">${name}</span>`)}</span></p>`;
  return layout(context, 'Refresh', 'refresh', html`<section class="card">
  <h1>Refresh</h1>
  <p class="muted"><code>await req.logto.refresh()</code> uses the refresh token now, and replaces this sign-in's ID token
  with the new one Logto returns: how an app picks up a changed profile or new roles without a new sign-in.
  (<code>req.user</code> keeps what it had at sign-in.)</p>
  <form method="post" action="/protected/refresh"><button class="button" id="refresh" type="submit">Refresh now</button></form>
  ${outcome}
</section>
<section class="card">
  <h2>ID token claims</h2>
  ${claimsTable(view.claims)}
</section>`);
}

export function signInCancelledPage(context: PageContext): string {
  return layout(context, 'Sign-in cancelled', undefined, html`<section class="card" id="cancelled">
  <h1>Sign-in cancelled</h1>
  <p id="cancelled-message">You cancelled the sign-in at Logto, so you are not signed in.</p>
  <div class="actions">
    <a class="button" id="sign-in-again" href="/sign-in">Sign in again</a>
    <a class="button secondary" href="/">Home</a>
  </div>
</section>`);
}

export interface ErrorView {
  status: number;
  title: string;
  message: string;
  /** Where to go next. */
  action?: { href: string; label: string };
}

export function errorPage(context: PageContext, view: ErrorView): string {
  return layout(context, view.title, undefined, html`<section class="card error" id="error" data-status="${view.status}">
  <h1>${view.title}</h1>
  <p id="error-message">${view.message}</p>
  <div class="actions">
    ${view.action ? html`<a class="button" href="${view.action.href}">${view.action.label}</a>` : ''}
    <a class="button secondary" href="/">Home</a>
  </div>
</section>`);
}
