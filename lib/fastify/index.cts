// CommonJS entry of passport-logto/fastify: Node 20.19+ can require() the ES module build, so both
// share one copy of the package (see ../core.cts for how the declarations are written).
import type * as esm from './adapter.js' with { 'resolution-mode': 'import' };

export type * from './adapter.js' with { 'resolution-mode': 'import' };
// The core, values and types (see ../core.cts), as index.ts has it. The `export *` also costs a
// require of ../core.cjs at load, which gives the same ES module as index.js loads.
export * from '../core.cjs';

export declare const logtoFastify: typeof esm.logtoFastify;

module.exports = require('./index.js');
