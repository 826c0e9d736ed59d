// passport-logto/fastify: logtoFastify (the plugin and hooks of an @fastify/passport app) and the
// whole core (the strategy, the helper, the stores, Bearer, errors), typed without Express's
// types, so that an app imports everything from here.
export * from './adapter.js';
export * from '../core.js';
