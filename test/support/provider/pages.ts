/**
 * Pages: the HTML the provider shows (sign-in, create account, signing out, signed out, errors,
 * and the page for a sign-in that has ended). Templates only; interactions.ts serves them.
 */

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f5f5f7; margin: 0; }
  main { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
  h1 { font-size: 1.4rem; margin-top: 0; }
  label { display: block; margin: .75rem 0 .25rem; font-size: .9rem; }
  input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }
  button { margin-top: 1rem; width: 100%; padding: .6rem; font-size: 1rem; cursor: pointer; }
  #sign-in, #create-account, .button { background: #5d34f2; color: #fff; border: 0; border-radius: 4px; }
  a.button { display: block; text-align: center; padding: .6rem; text-decoration: none; }
  .switch { font-size: .9rem; margin-top: 1rem; }
  .detail { color: #6b6b76; font-size: .8rem; }
  #cancel { background: none; border: 0; color: #555; text-decoration: underline; }
  .error { color: #b00020; }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

/** What the pages of an interaction know about the app; kept after the interaction ends (see endedPage). */
export interface AppLabel {
  name: string;
  /** The origin of the redirect URI: the app's home, as far as the provider can tell. */
  home: string | undefined;
}

const cancelForm = (uid: string): string => `<form id="abort" method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button type="submit" id="cancel">Cancel</button>
</form>`;

export function loginPage(uid: string, app: AppLabel, username: string, error?: string): string {
  return page('Sign in', `<h1>Sign in</h1>
<p>to continue to <strong id="app-name">${escapeHtml(app.name)}</strong></p>
${error ? `<p id="error" class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label for="username">Username</label>
  <input id="username" name="username" autocomplete="username" value="${escapeHtml(username)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit" id="sign-in">Sign in</button>
</form>
<p class="switch">No account? <a id="to-register" href="/interaction/${escapeHtml(uid)}?screen=register">Create account</a></p>
${cancelForm(uid)}`);
}

export function registerPage(uid: string, app: AppLabel, username: string, error?: string): string {
  return page('Create account', `<h1>Create account</h1>
<p>to continue to <strong id="app-name">${escapeHtml(app.name)}</strong></p>
${error ? `<p id="error" class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form id="register" method="post" action="/interaction/${escapeHtml(uid)}/register">
  <label for="username">Username</label>
  <input id="username" name="username" autocomplete="username" value="${escapeHtml(username)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="new-password" minlength="8" required>
  <label for="confirm-password">Confirm password</label>
  <input id="confirm-password" name="confirmPassword" type="password" autocomplete="new-password" minlength="8" required>
  <button type="submit" id="create-account">Create account</button>
</form>
<p class="switch">Already have an account? <a id="to-sign-in" href="/interaction/${escapeHtml(uid)}?screen=sign_in">Sign in</a></p>
${cancelForm(uid)}`);
}

/**
 * Logto's logout page confirms by itself: the form oidc-provider renders ends the whole session
 * (logout=yes) and submits itself.
 */
export function signingOutPage(form: string): string {
  const selfSubmitting = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/><noscript><button type="submit" id="sign-out">Sign out</button></noscript></form>');
  return page('Signing out', `<h1>Signing out…</h1>\n${selfSubmitting}\n<script>document.forms[0].submit()</script>`);
}

export function signedOutPage(): string {
  return page('Signed out', '<h1 id="signed-out">You have been signed out</h1>');
}

/** oidc-provider's own errors (e.g. a bad authorization request), one line per field. */
/**
 * An interaction that failed. One that is gone (`sessionGone`: finished, expired, or its cookie
 * lost, as when the browser goes back to a used sign-in form) sends the person back to the app to
 * start again.
 */
export function endedPage(known: AppLabel | undefined, detail: string, sessionGone: boolean): string {
  const back = known?.home
    ? `<p><a id="back-to-app" class="button" href="${escapeHtml(known.home)}">Back to ${escapeHtml(known.name)}</a></p>`
    : '<p>Go back to the application and sign in from there.</p>';
  const body = sessionGone
    ? `<h1>This sign-in has ended</h1>
<p id="error-message">This page belongs to a sign-in that has already finished or has expired, so it cannot be used again.
${known ? `Return to <strong id="app-name">${escapeHtml(known.name)}</strong>; if you are not signed in there, start the sign-in again.` : ''}</p>
${back}
<p class="detail">Details: <span id="error-detail">${escapeHtml(detail)}</span></p>`
    : `<h1>Something went wrong</h1>
<p id="error-message">${escapeHtml(detail)}</p>
${back}`;
  return page('Sign-in ended', body);
}
