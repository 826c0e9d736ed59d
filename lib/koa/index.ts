// passport-logto/koa: logtoKoa, the middleware of koa-passport apps, and the whole core (the strategy, the helper, the stores,
// Bearer, errors), typed without Express's types, so that an app imports everything from here.
export * from './adapter.js';
export * from '../core.js';
