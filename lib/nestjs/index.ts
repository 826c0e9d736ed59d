// passport-logto/nestjs: the guards of an @nestjs/passport app (on Express or Fastify) and the
// whole core (the strategy, the helper, the stores, Bearer, errors), typed without Express's
// types, so that an app imports everything from here.
export * from './adapter.js';
export * from '../core.js';
