// The root entry, for Express apps: the core, with Express's types for its handlers and
// `req.logto` (lib/express/types.ts, a type-only export that loads nothing at run time).
export * from './core.js';
export type * from './express/types.js';
