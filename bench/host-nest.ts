/**
 * The NestJS 11 apps of bench/hosts.ts, on the Express platform (express-session) and on the
 * Fastify platform (@fastify/session), loaded by bench/host-apps.ts with the test tsconfig (for
 * `experimentalDecorators`). passport-logto's is the README's NestJS app (and docs/nestjs.md's
 * Fastify platform) with the session check mounted and the token route behind
 * `LogtoAuthenticatedGuard()`; the bare one is NestJS's session recipe: PassportModule with
 * sessions, a PassportSerializer and a guard that asks `req.isAuthenticated()`.
 *
 * Written without constructor-parameter metadata (tsx's esbuild emits none), as test/nestjs/nest-app.ts.
 */
import 'reflect-metadata';
import type { Server } from 'node:http';
import { Controller, Get, Injectable, Module, Redirect, Req, UseGuards, type CanActivate, type ExecutionContext, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { PassportModule, PassportSerializer, PassportStrategy } from '@nestjs/passport';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { INestApplication } from '@nestjs/common';
import type { Request } from 'express';
import passport from 'passport';
import type * as LogtoPackage from '../lib/index.js';
import type * as LogtoFastifyEntry from '../lib/fastify/index.js';
import type * as LogtoNestEntry from '../lib/nestjs/index.js';
import { countReads, importBuilt, sessionCookieName, strategyOptions, type HostApp, type RequestHandler, type StoreReads } from './host-apps.js';
import type { HostConfig } from './protocol.js';

/** Keys of passport-logto's records in a session store, beside the session ids. */
const isRecord = (key: string): boolean => key.startsWith('passport-logto:');

export async function buildNestApp(config: HostConfig, server: Server, reads: StoreReads): Promise<HostApp> {
  let loggedIn: unknown;

  @Injectable()
  class SessionSerializer extends PassportSerializer {
    serializeUser(user: unknown, done: (error: unknown, user?: unknown) => void): void {
      loggedIn = user;
      done(null, user);
    }

    deserializeUser(payload: unknown, done: (error: unknown, user?: unknown) => void): void {
      done(null, payload);
    }
  }

  const providers: Type[] = [SessionSerializer];
  let controller: Type;
  let strategyClass: Type<LogtoPackage.LogtoStrategy> | undefined;

  if (config.variant === 'passport-logto') {
    const { LogtoStrategy } = await importBuilt<typeof LogtoPackage>('passport-logto');
    const { LogtoAuthenticatedGuard, LogtoAuthGuard, takeReturnTo } = await importBuilt<typeof LogtoNestEntry>('passport-logto/nestjs');

    @Injectable()
    class LogtoNestStrategy extends PassportStrategy(LogtoStrategy, 'logto') {
      constructor() {
        super(strategyOptions(config));
      }

      validate({ claims }: LogtoPackage.LogtoVerifyContext): object {
        return { id: claims.sub, name: claims.name };
      }
    }

    @Controller()
    class AppController {
      @Get('sign-in')
      @UseGuards(LogtoAuthGuard())
      signIn(): void {
        // The guard sends the browser to Logto.
      }

      @Get('callback')
      @UseGuards(LogtoAuthGuard())
      @Redirect()
      callback(@Req() req: Request): { url: string } {
        return { url: takeReturnTo(req) };
      }

      @Get()
      home(): object {
        return { page: 'home' };
      }

      @Get('api/token')
      @UseGuards(LogtoAuthenticatedGuard())
      async token(@Req() req: Request): Promise<object> {
        return { tokenLength: (await (req.logto as LogtoPackage.LogtoClient).getAccessToken(config.resource)).length };
      }
    }
    providers.push(LogtoNestStrategy);
    strategyClass = LogtoNestStrategy;
    controller = AppController;
  } else {
    const user = config.user;
    if (!user) throw new Error('bare app: no user to log in (the parent passes passport-logto\'s)');

    // NestJS's session recipe: the route's guard asks Passport whether the session holds a user.
    @Injectable()
    class AuthenticatedGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        return context.switchToHttp().getRequest<Request>().isAuthenticated();
      }
    }

    @Controller()
    class AppController {
      @Get('sign-in')
      @Redirect('/')
      async signIn(@Req() req: Request): Promise<void> {
        await new Promise<void>((resolve, reject) => req.logIn(user as Express.User, (error) => (error ? reject(error) : resolve())));
      }

      @Get()
      home(): object {
        return { page: 'home' };
      }

      @Get('api/token')
      @UseGuards(AuthenticatedGuard)
      token(): object {
        return { tokenLength: config.tokenLength ?? 0 };
      }
    }
    controller = AppController;
  }

  @Module({ imports: [PassportModule.register({ session: true })], controllers: [controller], providers })
  class AppModule {}

  let handler: RequestHandler | undefined;
  let nest: INestApplication;
  if (config.host === 'nest-fastify') {
    const { FastifyAdapter } = await import('@nestjs/platform-fastify');
    const { default: fastifyCookie } = await import('@fastify/cookie');
    const { default: fastifySession } = await import('@fastify/session');
    // Fastify answers on the process's server, which listened before the app was built.
    const adapter = new FastifyAdapter({
      serverFactory: (handle: RequestHandler) => {
        handler = handle;
        return server;
      },
    } as never);
    const fastifyNest = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, { logger: false });
    // The casts: @nestjs/platform-fastify pins a Fastify of its own, whose plugin types are another copy's.
    await fastifyNest.register(fastifyCookie as never);
    const store = countReads(new fastifySession.MemoryStore(), reads, isRecord);
    await fastifyNest.register(fastifySession as never, { cookieName: sessionCookieName, secret: 'a-bench-secret-of-at-least-32-characters', saveUninitialized: false, cookie: { secure: false }, store });
    const fastify = fastifyNest.getHttpAdapter().getInstance();
    if (strategyClass) {
      const { logtoNestFastify } = await importBuilt<typeof LogtoNestEntry>('passport-logto/nestjs');
      await fastifyNest.register(logtoNestFastify);
    }
    // Passport's session middleware, on Fastify's request (where the session is), for every route.
    const restoreUser = passport.session();
    fastify.addHook('preHandler', (request, reply, done) => {
      restoreUser(request as never, reply as never, done);
    });
    if (strategyClass) {
      // The session check, after Passport's session: passport-logto/fastify's, as for silent sign-in (docs/nestjs.md).
      const { logtoFastify } = await importBuilt<typeof LogtoFastifyEntry>('passport-logto/fastify');
      fastify.addHook('preHandler', logtoFastify(fastifyNest.get(strategyClass)).session() as never);
    }
    await fastifyNest.init();
    await fastify.ready();
    nest = fastifyNest;
  } else {
    const { default: express } = await import('express');
    const { default: session } = await import('express-session');
    const { ExpressAdapter } = await import('@nestjs/platform-express');
    const expressApp = express();
    nest = await NestFactory.create(AppModule, new ExpressAdapter(expressApp), { logger: false });
    const store = countReads(new session.MemoryStore(), reads, isRecord);
    nest.use(session({ name: sessionCookieName, secret: 'bench-session-secret', resave: false, saveUninitialized: false, store }));
    nest.use(passport.initialize());
    nest.use(passport.session());
    // After passport.session(): the session check of the README's Express app.
    if (strategyClass) nest.use(nest.get(strategyClass).session());
    await nest.init();
    handler = expressApp as unknown as RequestHandler;
  }
  if (!handler) throw new Error('NestJS did not hand over its request handler');
  return { handler, loggedInUser: () => loggedIn };
}
