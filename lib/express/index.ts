// passport-logto/express: the root export, which serves Express (4 and 5) as it always has.
export * from '../index.js';
