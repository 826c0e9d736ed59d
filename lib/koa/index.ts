// passport-logto/koa: logtoKoa (the middleware of a koa-passport app) and the whole core (the
// strategy, the helper, the stores, Bearer, errors), typed without Express's types, so that an
// app imports everything from here.
export * from './adapter.js';
export * from '../core.js';
