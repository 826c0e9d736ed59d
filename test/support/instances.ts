import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { InstanceConfig, TokenStoreKind } from './instance-server.js';
import type { TestApp, TestProvider } from './provider/index.js';
import { freePort } from './redis.js';

const serverScript = fileURLToPath(new URL('./instance-server.ts', import.meta.url));

/** One app process; stop and start it again to play a restart or a deploy. */
export class Instance {
  private child: ChildProcess | undefined;

  constructor(private readonly config: InstanceConfig) {}

  get url(): string {
    return `http://127.0.0.1:${this.config.port}`;
  }

  async start(): Promise<void> {
    const child = fork(serverScript, [JSON.stringify(this.config)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`instance on port ${this.config.port} exited with ${code}`)));
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    this.child = undefined;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

export interface InstancesOptions {
  count: number;
  redisUrl: string;
  tokenStore: TokenStoreKind;
  scopes?: string[];
  resources?: string[];
  accessTokenExpiryMargin?: number;
}

export interface RunningInstances {
  instances: Instance[];
  registered: TestApp;
  /** The callback URL that every instance shares, as behind a load balancer. */
  callbackURL: string;
  stop(): Promise<void>;
}

/**
 * `count` app processes of one Logto application sharing a Redis, with one session cookie and
 * one callback URL, so that any request of a browser may reach any of them.
 */
export async function startInstances(provider: TestProvider, options: InstancesOptions): Promise<RunningInstances> {
  const ports = await Promise.all(Array.from({ length: options.count }, () => freePort()));
  const callbackURL = `http://127.0.0.1:${ports[0]}/callback`;
  const postLogoutRedirectUri = `http://127.0.0.1:${ports[0]}/`;
  const registered = await provider.registerApp({ redirectUris: [callbackURL], postLogoutRedirectUris: [postLogoutRedirectUri] });
  const cookieName = `shared-${ports[0]}`;
  const instances = ports.map(
    (port) =>
      new Instance({
        port,
        endpoint: provider.endpoint,
        appId: registered.appId,
        appSecret: registered.appSecret,
        callbackURL,
        postLogoutRedirectUri,
        redisUrl: options.redisUrl,
        tokenStore: options.tokenStore,
        cookieName,
        scopes: options.scopes ?? [],
        resources: options.resources ?? [],
        accessTokenExpiryMargin: options.accessTokenExpiryMargin ?? 0,
      }),
  );
  await Promise.all(instances.map((instance) => instance.start()));
  return {
    instances,
    registered,
    callbackURL,
    stop: async () => {
      await Promise.all(instances.map((instance) => instance.stop()));
    },
  };
}
