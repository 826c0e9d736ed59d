// A NestJS app as an ES module consumer writes it, against passport-logto/nestjs; test/types.test.ts
// type-checks it against the packed package with skipLibCheck: false and experimentalDecorators.
import { Controller, Get, Injectable, Req, UseGuards, type CanActivate, type Type } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import { LogtoBearerStrategy, LogtoError, LogtoStrategy, type AccessTokenClaims, type LogtoVerifyContext } from 'passport-logto';
import { LogtoAuthenticatedGuard, LogtoAuthGuard, LogtoBearerGuard, LogtoSignOutGuard, logtoNestFastify, takeReturnTo, toHttpException } from 'passport-logto/nestjs';
import type { NestFastifyPlugin } from 'passport-logto/nestjs';
import type { LogtoHttpExceptionBody } from 'passport-logto/nestjs';

@Injectable()
export class LogtoNestStrategy extends PassportStrategy(LogtoStrategy, 'logto') {
  constructor() {
    super({ endpoint: 'https://tenant.logto.app', appId: 'app-id', appSecret: 'app-secret', callbackURL: 'http://localhost:3000/callback' });
  }

  validate({ profile }: LogtoVerifyContext): { id: string } {
    return { id: profile.id };
  }
}

@Injectable()
export class LogtoApiStrategy extends PassportStrategy(LogtoBearerStrategy, 'logto-bearer') {
  constructor() {
    super({ endpoint: 'https://tenant.logto.app', audience: 'https://api.example.com' });
  }

  validate(claims: AccessTokenClaims): { id: string } {
    return { id: claims.sub };
  }
}

@Controller()
export class AppController {
  @Get('callback')
  @UseGuards(LogtoAuthGuard())
  callback(@Req() req: Request): string {
    return takeReturnTo(req, '/home');
  }

  @Get('profile')
  @UseGuards(LogtoAuthenticatedGuard({ accessToken: 'https://api.example.com', strategy: 'logto' }))
  profile(@Req() req: Request): string | undefined {
    return req.logto?.accessToken;
  }
}

const guards: Array<Type<CanActivate>> = [LogtoSignOutGuard({ postLogoutRedirectUri: '/' }), LogtoBearerGuard({ requiredScopes: ['read:items'] })];
const exception = toHttpException(new LogtoError('invalid_state', 'unknown state'));
const body: LogtoHttpExceptionBody = { statusCode: 400, error: 'invalid_state', message: 'unknown state' };

// @ts-expect-error the guard options are typed
LogtoAuthenticatedGuard({ redirect: 42 });

const plugin: NestFastifyPlugin = logtoNestFastify;

export { body, exception, guards, plugin };
