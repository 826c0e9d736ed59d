// CommonJS entry: require() loads the ES module build (index.js), so that CommonJS and ESM callers
// share one copy of the package. Its declarations are the core's (core.cts lists its values; the
// `export *` also costs a require of core.cjs at load, which yields the same module) and
// Express's types, as index.ts has them.
export * from './core.cjs';
export type * from './express/types.js' with { 'resolution-mode': 'import' };

module.exports = require('./index.js');
