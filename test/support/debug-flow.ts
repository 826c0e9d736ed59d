/**
 * A child process for test/debug-log.test.ts: one sign-in, a guard redirect, a refresh and a
 * failed callback against the test provider, with whatever NODE_DEBUG the parent set. The debug
 * log goes to stderr; stdout gets every secret value the flow handled, for the parent to look for.
 */
import type { NextFunction, Request, Response } from 'express';
import { startApp } from './app.js';
import { getJson, signIn, tokensOf } from './flows.js';
import { TestBrowser } from './http-client.js';
import { API_RESOURCE, startProvider } from './provider/index.js';

const provider = await startProvider();
const running = await startApp(provider, {
  strategy: { resources: [API_RESOURCE], scopes: ['read:items'] },
  routes: (express, logto) => {
    express.get('/api-token', logto.authenticated(), (req: Request, res: Response, next: NextFunction) => {
      req.logto!.getAccessToken(API_RESOURCE).then((token) => res.json({ token }), next);
    });
  },
});
const browser = new TestBrowser();
await browser.get(`${running.url}/protected`);
await signIn(browser, provider, running);
const signedIn = await tokensOf(browser, running);
const api = await getJson<{ token: string }>(browser, `${running.url}/api-token`);
const refreshed = await tokensOf(browser, running);
await new TestBrowser().get(`${running.callbackURL}?code=made-up-code&state=made-up-state&iss=${encodeURIComponent(provider.issuer)}`);

const fromRequests = provider.requests.flatMap((request) => [request.params.code, request.params.code_verifier, request.params.refresh_token]);
const secrets = [signedIn.idToken, signedIn.refreshToken, api.body.token, refreshed.refreshToken, running.registered.appSecret, ...fromRequests];
console.log(JSON.stringify({ secrets: secrets.filter((value): value is string => typeof value === 'string' && value.length > 0), callbackURL: running.callbackURL }));
await running.close();
await provider.close();
