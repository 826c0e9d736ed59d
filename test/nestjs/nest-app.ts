/**
 * A NestJS app on the Express platform, written as NestJS's documentation writes a session-based
 * Passport strategy (PassportStrategy mixin, PassportSerializer, PassportModule, guards on the
 * routes, express-session and passport.session() in main), with passport-logto/nestjs's guards.
 * The same source serves NestJS 10 and 11: nest10-express.test.ts points `@nestjs/*` at NestJS 10.
 *
 * Written without constructor-parameter metadata (tsx's esbuild emits none): every injected
 * constructor parameter names its token with @Inject().
 */
import 'reflect-metadata';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import {
  Catch,
  Controller,
  Get,
  HttpException,
  Inject,
  Injectable,
  Module,
  Post,
  Redirect,
  Req,
  UseGuards,
  type ArgumentsHost,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { BaseExceptionFilter, HttpAdapterHost, NestFactory } from '@nestjs/core';
import { AuthGuard, PassportModule, PassportSerializer, PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import session from 'express-session';
import passport from 'passport';
import {
  LogtoBearerStrategy,
  LogtoError,
  LogtoStrategy,
  UserScope,
  type AccessTokenClaims,
  type LogtoStrategyOptions,
  type LogtoVerifyContext,
} from '../../lib/index.js';
import { LogtoAuthenticatedGuard, LogtoAuthGuard, LogtoBearerGuard, LogtoSignOutGuard, logtoNestFastify, takeReturnTo } from '../../lib/nestjs/index.js';
import type { RunningApp } from '../support/app.js';
import { API_RESOURCE, type TestProvider } from '../support/provider/index.js';

export interface NestAppOptions {
  /** The Passport name of the strategy; apps running side by side in one process need their own. */
  name?: string;
  /**
   * `plain` puts @nestjs/passport's own `AuthGuard(name)` on the callback, which never calls logIn;
   * `docs` puts the guard of NestJS's session documentation (AuthGuard, then `super.logIn()`) on
   * the sign-in and callback routes.
   */
  callbackGuard?: 'logto' | 'plain' | 'docs';
  /** Nest's HTTP platform: Express (express-session) or Fastify (@fastify/session). Default: Express. */
  platform?: 'express' | 'fastify';
}

export interface RunningNestApp extends RunningApp {
  nest: INestApplication;
  /** The exceptions that reached the app's global exception filter. */
  exceptions: unknown[];
}

const LOGTO_OPTIONS = Symbol('LOGTO_OPTIONS');

export async function startNestApp(provider: TestProvider, options: NestAppOptions = {}): Promise<RunningNestApp> {
  const name = options.name ?? 'logto';
  const bearerName = `${name}-bearer`;
  // The port first, so that the callback URL can be registered with Logto before Nest starts.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const callbackURL = `${url}/callback`;
  const registered = await provider.registerApp({
    redirectUris: [callbackURL],
    postLogoutRedirectUris: [`${url}/`],
    backchannelLogoutUri: `${url}/backchannel-logout`,
  });
  const strategyOptions: LogtoStrategyOptions = {
    endpoint: provider.endpoint,
    appId: registered.appId,
    appSecret: registered.appSecret,
    callbackURL,
    postLogoutRedirectUri: `${url}/`,
    resources: [API_RESOURCE],
    scopes: [UserScope.Email, UserScope.Organizations, 'read:items'],
    jwksCooldown: 0,
    name,
    backchannelLogout: true,
  };

  @Injectable()
  class LogtoNestStrategy extends PassportStrategy(LogtoStrategy, name) {
    constructor(@Inject(LOGTO_OPTIONS) logtoOptions: LogtoStrategyOptions) {
      super(logtoOptions);
    }

    // What the user of the session is: the mixin routes the strategy's verify function here.
    validate(context: LogtoVerifyContext): object {
      return { id: context.profile.id, name: context.profile.name, email: context.claims.email };
    }
  }

  @Injectable()
  class LogtoBearerNestStrategy extends PassportStrategy(LogtoBearerStrategy, bearerName) {
    constructor() {
      super({ endpoint: provider.endpoint, audience: API_RESOURCE, name: bearerName });
    }

    validate(claims: AccessTokenClaims): object {
      return { id: claims.sub };
    }
  }

  @Injectable()
  class SessionSerializer extends PassportSerializer {
    serializeUser(user: unknown, done: (error: unknown, user?: unknown) => void): void {
      done(null, user);
    }

    deserializeUser(payload: unknown, done: (error: unknown, user?: unknown) => void): void {
      done(null, payload);
    }
  }

  // The guard NestJS's documentation writes for a session-based strategy.
  @Injectable()
  class SessionAuthGuard extends AuthGuard(name) {
    override async canActivate(context: ExecutionContext): Promise<boolean> {
      const result = (await super.canActivate(context)) as boolean;
      await super.logIn(context.switchToHttp().getRequest());
      return result;
    }
  }

  const callbackGuard = options.callbackGuard === 'plain' ? AuthGuard(name) : options.callbackGuard === 'docs' ? SessionAuthGuard : LogtoAuthGuard(name);
  const signInGuard = options.callbackGuard === 'docs' ? SessionAuthGuard : LogtoAuthGuard(name);

  @Controller()
  class AuthController {
    @Get('sign-in')
    @UseGuards(signInGuard)
    signIn(): void {
      // The guard sends the browser to Logto.
    }

    @Get('callback')
    @UseGuards(callbackGuard)
    @Redirect()
    callback(@Req() req: Request): { url: string } {
      return { url: takeReturnTo(req) };
    }

    @Get('sign-out')
    @UseGuards(LogtoSignOutGuard({ strategy: name }))
    signOut(): void {
      // The guard sends the browser to Logto's sign-out.
    }
  }

  @Controller()
  class PagesController {
    constructor(@Inject(LogtoNestStrategy) private readonly logto: LogtoNestStrategy) {}

    @Get()
    home(@Req() req: Request): object {
      // Fastify's request has isAuthenticated() once Passport's session middleware has run on it.
      const authenticated = typeof req.isAuthenticated === 'function' ? req.isAuthenticated() : false;
      const sessionID = req.sessionID ?? (req.session as { sessionId?: string } | undefined)?.sessionId;
      return { user: req.user ?? null, sessionID, authenticated };
    }

    // Logs out of the app only: the Logto session stays, for silent sign-in or the next sign-in.
    @Post('log-out')
    async logOut(@Req() req: Request): Promise<object> {
      await this.logto.logOut(req);
      return { loggedOut: true };
    }

    @Get('tokens')
    async tokens(@Req() req: Request): Promise<object> {
      const client = await this.logto.client(req).load();
      return { idToken: client.getIdToken() ?? null, refreshToken: client.getRefreshToken() ?? null, authenticated: client.isAuthenticated() };
    }

    @Get('protected')
    @UseGuards(LogtoAuthenticatedGuard({ strategy: name, redirect: '/sign-in' }))
    protectedPage(@Req() req: Request): object {
      return { page: 'protected', sub: req.logto?.getIdTokenClaims().sub, query: req.query };
    }

    @Get('api/profile')
    @UseGuards(LogtoAuthenticatedGuard({ strategy: name }))
    profile(@Req() req: Request): object {
      return { claims: req.logto?.getIdTokenClaims() };
    }

    @Get('api/token')
    @UseGuards(LogtoAuthenticatedGuard({ strategy: name, accessToken: API_RESOURCE }))
    apiToken(@Req() req: Request): object {
      return { accessToken: req.logto?.accessToken };
    }

    @Get('organizations')
    @UseGuards(LogtoAuthenticatedGuard({ strategy: name, organizationTokens: true }))
    organizations(@Req() req: Request): object {
      return { organizationTokens: req.logto?.organizationTokens };
    }

    @Get('organizations/globex')
    @UseGuards(LogtoAuthenticatedGuard({ strategy: name, accessToken: { organizationId: 'org-globex' } }))
    notMember(): object {
      return { page: 'globex' };
    }

    @Get('api/items')
    @UseGuards(LogtoBearerGuard({ strategy: bearerName, requiredScopes: ['read:items'] }))
    items(@Req() req: Request): object {
      return { user: req.user, scopes: (req.authInfo as { scopes: string[] }).scopes };
    }

    @Get('api/items/delete')
    @UseGuards(LogtoBearerGuard({ strategy: bearerName, requiredScopes: ['delete:items'] }))
    deleteItems(): object {
      return { deleted: true };
    }
  }

  @Module({
    imports: [PassportModule.register({ session: true })],
    controllers: [AuthController, PagesController],
    providers: [{ provide: LOGTO_OPTIONS, useValue: strategyOptions }, LogtoNestStrategy, LogtoBearerNestStrategy, SessionSerializer],
  })
  class AppModule {}

  const exceptions: unknown[] = [];
  @Catch()
  class RecordingFilter extends BaseExceptionFilter {
    override catch(exception: unknown, host: ArgumentsHost): void {
      exceptions.push(exception);
      super.catch(exception, host);
    }
  }

  const store = new session.MemoryStore();
  let nest: INestApplication;
  if (options.platform === 'fastify') {
    const { FastifyAdapter } = await import('@nestjs/platform-fastify');
    const { default: fastifyCookie } = await import('@fastify/cookie');
    const { default: fastifySession } = await import('@fastify/session');
    const fastifyNest = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter(), { logger: false });
    // The casts: @nestjs/platform-fastify pins a Fastify of its own, whose plugin types are another copy's.
    await fastifyNest.register(fastifyCookie as never);
    await fastifyNest.register(fastifySession as never, {
      cookieName: `sid-${port}`,
      secret: 'a-test-secret-of-at-least-32-characters',
      saveUninitialized: false,
      cookie: { secure: false },
    });
    // Passport can answer through Fastify's reply, and passport-logto too, whichever guard runs.
    await fastifyNest.register(logtoNestFastify);
    // Silent sign-in and back-channel logout: passport-logto/fastify's handlers.
    const { logtoFastify } = await import('../../lib/fastify/index.js');
    const logto = logtoFastify(fastifyNest.get(LogtoNestStrategy));
    await fastifyNest.register(logto.backchannelLogout({ path: '/backchannel-logout' }) as never);
    // Passport's session middleware, on Fastify's request (where the session is), for every route.
    const restoreUser = passport.session();
    const fastify = fastifyNest.getHttpAdapter().getInstance();
    fastify.addHook('preHandler', (request, reply, done) => {
      restoreUser(request as never, reply as never, done);
    });
    // The session check, after Passport's: a session whose sign-in has ended is signed out.
    fastify.addHook('preHandler', logto.session() as never);
    fastify.addHook('preHandler', logto.silentSignIn({ retryAfter: 1 }) as never);
    nest = fastifyNest;
  } else {
    nest = await NestFactory.create(AppModule, { logger: false });
    nest.use(session({ name: `sid-${port}`, secret: 'test-secret', resave: false, saveUninitialized: false, store }));
    nest.use(passport.initialize());
    nest.use(passport.session());
    const strategy = nest.get(LogtoNestStrategy);
    nest.use('/backchannel-logout', strategy.backchannelLogout());
    nest.use(strategy.silentSignIn({ retryAfter: 1 }));
  }
  nest.useGlobalFilters(new RecordingFilter(nest.get(HttpAdapterHost).httpAdapter));
  await nest.listen(port, '127.0.0.1');


  return {
    url,
    registered,
    callbackURL,
    logto: nest.get(LogtoNestStrategy),
    store,
    errors: exceptions,
    exceptions,
    nest,
    close: async () => {
      (nest.getHttpServer() as { closeAllConnections(): void }).closeAllConnections();
      await nest.close();
    },
  };
}

// The test compares against the classes of this module graph (see load-nest-app.ts).
export { HttpException, LogtoError };

/** The majors of NestJS, @nestjs/passport and Express that this module graph runs on. */
export function nestVersions(): { core: number; common: number; passport: number; express: number } {
  const require = createRequire(import.meta.resolve('@nestjs/core'));
  const major = (name: string): number => Number((require(`${name}/package.json`) as { version: string }).version.split('.')[0]);
  const expressRequire = createRequire(require.resolve('@nestjs/platform-express'));
  return {
    core: major('@nestjs/core'),
    common: major('@nestjs/common'),
    passport: Number((createRequire(import.meta.resolve('@nestjs/passport'))('@nestjs/passport/package.json') as { version: string }).version.split('.')[0]),
    express: Number((expressRequire('express/package.json') as { version: string }).version.split('.')[0]),
  };
}
