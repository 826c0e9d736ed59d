/**
 * Starting the example: read the settings from the environment, pick the Logto (a real tenant,
 * or the bundled Logto-compatible provider), and listen. main.ts and the tests both use these.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProvider } from '../test/support/provider/index.js';
import { createExampleApp } from './app.js';

/** Both servers listen on loopback only: the bundled provider and the example are for this machine. */
export const host = '127.0.0.1';

export type LogtoSource =
  /** The bundled provider from test/support, on this port (0: any free one). */
  | { kind: 'bundled'; port: number }
  /** A real Logto tenant, with a "Traditional web" application. */
  | { kind: 'tenant'; endpoint: string; appId: string; appSecret: string; resource: string | undefined; scopes: string[] };

export interface ExampleConfig {
  /** The app's port (0: any free one). */
  port: number;
  /** The URL browsers use, when it is not `http://127.0.0.1:<port>` (a proxy, or `localhost`). */
  baseUrl: string | undefined;
  logto: LogtoSource;
  /** Random per run when not given; sessions then end with the process, which is fine here. */
  sessionSecret: string | undefined;
}

const defaultPort = 3000;
const defaultProviderPort = 3001;

function setting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

function portSetting(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = setting(env, name);
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new Error(`${name} must be a port number (0-65535), got "${value}".`);
  return port;
}

/** The example's settings from environment variables; throws a message fit for the console. */
export function readConfig(env: NodeJS.ProcessEnv): ExampleConfig {
  const tenantVariables = ['LOGTO_ENDPOINT', 'LOGTO_APP_ID', 'LOGTO_APP_SECRET'] as const;
  const missing = tenantVariables.filter((name) => setting(env, name) === undefined);
  let logto: LogtoSource;
  if (missing.length === tenantVariables.length) {
    logto = { kind: 'bundled', port: portSetting(env, 'PROVIDER_PORT', defaultProviderPort) };
  } else if (missing.length > 0) {
    // Half a tenant configuration is a mistake; running the bundled provider instead would hide it.
    throw new Error(`To use a Logto tenant, set ${tenantVariables.join(', ')}; ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing.`);
  } else {
    logto = {
      kind: 'tenant',
      endpoint: setting(env, 'LOGTO_ENDPOINT')!,
      appId: setting(env, 'LOGTO_APP_ID')!,
      appSecret: setting(env, 'LOGTO_APP_SECRET')!,
      resource: setting(env, 'LOGTO_RESOURCE'),
      scopes: (setting(env, 'LOGTO_SCOPES') ?? '').split(/[\s,]+/).filter(Boolean),
    };
  }
  const baseUrl = setting(env, 'BASE_URL');
  if (baseUrl !== undefined && !/^https?:\/\/[^/]+\/?$/.test(baseUrl)) {
    throw new Error(`BASE_URL must be an origin such as http://localhost:3000, got "${baseUrl}".`);
  }
  return {
    port: portSetting(env, 'PORT', defaultPort),
    baseUrl: baseUrl?.replace(/\/$/, ''),
    logto,
    sessionSecret: setting(env, 'SESSION_SECRET'),
  };
}

export interface RunningExample {
  /** Where to open the app. */
  url: string;
  /** The Logto endpoint the app uses. */
  endpoint: string;
  /** Set when the bundled provider runs: its demo account. */
  demoAccount: { username: string; password: string } | undefined;
  /** The bundled provider, for tests that want to look at it. */
  provider: TestProvider | undefined;
  close(): Promise<void>;
}

function listen(server: Server, port: number, variable: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new Error(`Port ${port} is in use; choose another with ${variable}=<port>.`, { cause: error }) : error);
    });
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startExample(config: ExampleConfig): Promise<RunningExample> {
  // Listen first: with port 0 the redirect URIs are known only once the port is.
  const server = createServer();
  const port = await listen(server, config.port, 'PORT');
  const baseUrl = config.baseUrl ?? `http://${host}:${port}`;
  const sessionSecret = config.sessionSecret ?? randomBytes(32).toString('hex');

  try {
    if (config.logto.kind === 'tenant') {
      const { endpoint, appId, appSecret, resource, scopes } = config.logto;
      server.on('request', createExampleApp({ baseUrl, endpoint, appId, appSecret, resource, scopes, sessionSecret }));
      return { url: baseUrl, endpoint, demoAccount: undefined, provider: undefined, close: () => closeServer(server) };
    }

    // Loaded only here: the bundled provider needs the dev dependency oidc-provider.
    const { API_RESOURCE, startProvider } = await import('../test/support/provider/index.js');
    const providerPort = config.logto.port;
    const provider = await startProvider({
      port: providerPort,
      // Its default application gets exactly the URIs this app sends, as in the Logto Console.
      redirectUris: [`${baseUrl}/callback`],
      postLogoutRedirectUris: [`${baseUrl}/`],
      appName: 'passport-logto example',
    }).catch((error: unknown) => {
      const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      throw inUse ? new Error(`Port ${providerPort} is in use; choose another with PROVIDER_PORT=<port>.`, { cause: error }) : error;
    });
    const demo = provider.users.demo;
    const demoAccount = { username: demo.username, password: demo.password };
    server.on('request', createExampleApp({
      baseUrl,
      endpoint: provider.endpoint,
      appId: provider.app.appId,
      appSecret: provider.app.appSecret,
      resource: API_RESOURCE,
      // The bundled provider's API permission and organization permission, asked for as scopes as in Logto.
      scopes: ['read:items', 'read:members'],
      sessionSecret,
      logtoLabel: `bundled test provider at ${provider.endpoint}`,
      demoAccount,
    }));
    return {
      url: baseUrl,
      endpoint: provider.endpoint,
      demoAccount,
      provider,
      close: async () => {
        await closeServer(server);
        await provider.close();
      },
    };
  } catch (error) {
    await closeServer(server);
    throw error;
  }
}
