// CommonJS entry of passport-logto/fastify: Node 20.19+ can require() the ES module build, so both
// share one copy of the package (see ../index.cts for how the declarations are written).
import type * as esm from './index.js' with { 'resolution-mode': 'import' };

export type * from './index.js' with { 'resolution-mode': 'import' };

export declare const logtoFastify: typeof esm.logtoFastify;

module.exports = require('./index.js');
