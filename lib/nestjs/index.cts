// CommonJS entry of passport-logto/nestjs, built as the root one is (see ../core.cts): require()
// loads the ES module build, so both share one LogtoError class and one strategy registry.
import type * as esm from './adapter.js' with { 'resolution-mode': 'import' };

export type * from './adapter.js' with { 'resolution-mode': 'import' };
// The core, values and types (see ../core.cts), as index.ts has it. The `export *` also costs a
// require of ../core.cjs at load, which gives the same ES module as index.js loads.
export * from '../core.cjs';

export declare const LogtoAuthGuard: typeof esm.LogtoAuthGuard;
export declare const LogtoAuthenticatedGuard: typeof esm.LogtoAuthenticatedGuard;
export declare const LogtoBearerGuard: typeof esm.LogtoBearerGuard;
export declare const LogtoSignOutGuard: typeof esm.LogtoSignOutGuard;
export declare const toHttpException: typeof esm.toHttpException;
export declare const takeReturnTo: typeof esm.takeReturnTo;
export declare const logtoNestFastify: typeof esm.logtoNestFastify;

module.exports = require('./index.js');
