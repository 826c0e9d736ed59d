/**
 * `npm run provider`: the bundled Logto-compatible provider on its own, for pointing your own app
 * at it while developing. No Logto tenant and no internet: an in-memory provider (the one the
 * tests use, see test/support/provider/) with one application whose ID and secret never change,
 * the demo users, an API resource and organizations. Its state ends with the process.
 */
import { randomBytes } from 'node:crypto';
import {
  API_RESOURCE,
  API_SCOPES,
  ORGANIZATION_SCOPES,
  ORGANIZATIONS,
  startProvider,
  type TestProvider,
} from '../test/support/provider/index.js';

/** Fixed, so that an app configured once keeps working across restarts. Not secret: for this machine only. */
export const LOCAL_APP = {
  appId: 'local-passport-logto-app',
  appSecret: 'local-secret-for-development-only',
  name: 'Your app (local Logto)',
} as const;

const defaultPort = 3001;

function readPort(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return defaultPort;
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || port > 65535) throw new Error(`PORT must be a port number (0-65535), got "${value}".`);
  return port;
}

let provider: TestProvider;
try {
  const port = readPort(process.env.PORT);
  provider = await startProvider({ port }).catch((error: unknown) => {
    const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
    throw inUse ? new Error(`Port ${port} is in use; choose another with PORT=<port>.`, { cause: error }) : error;
  });
  await provider.registerApp({
    appId: LOCAL_APP.appId,
    appSecret: LOCAL_APP.appSecret,
    name: LOCAL_APP.name,
    // oidc-provider wants at least one listed; the example's. Any other loopback URI is accepted too,
    // whatever port and path your app uses, as long as it runs on this machine.
    redirectUris: ['http://127.0.0.1:3000/callback'],
    postLogoutRedirectUris: ['http://127.0.0.1:3000/'],
    anyLoopbackRedirectUri: true,
  });
} catch (error) {
  console.error(`The provider could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

const { demo, alice } = provider.users;
const acme = ORGANIZATIONS.find((organization) => organization.id === 'org-acme');
console.log(`Local Logto-compatible provider (passport-logto's test provider, not a real Logto)
  Endpoint:       ${provider.endpoint}   (issuer ${provider.issuer})
  App ID:         ${LOCAL_APP.appId}
  App secret:     ${LOCAL_APP.appSecret}
  Redirect URIs:  any on this machine, e.g. http://${new URL(provider.endpoint).hostname}:3000/callback (127.0.0.1, localhost or [::1], any port and path)
  Users:          ${demo.username} / ${demo.password} (member of ${acme?.name ?? 'org-acme'}), ${alice.username} / ${alice.password}; or "Create account"
  API resource:   ${API_RESOURCE}, permissions ${API_SCOPES.join(' ')}
  Organizations:  ${ORGANIZATIONS.map((organization) => organization.id).join(', ')}, permissions ${ORGANIZATION_SCOPES.join(' ')}

Set these in your app's environment (SESSION_SECRET signs your app's session cookie; this one is new each run):
  export LOGTO_ENDPOINT=${provider.endpoint}
  export LOGTO_APP_ID=${LOCAL_APP.appId}
  export LOGTO_APP_SECRET=${LOCAL_APP.appSecret}
  export SESSION_SECRET=${randomBytes(24).toString('base64url')}

Everything is in memory: users you create and sign-ins end when this stops. Stop: Ctrl+C`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    provider.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
