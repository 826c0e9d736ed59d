// CommonJS declarations of the core (core.ts), which every entry's .cts re-exports with
// `export *`. Node 20.19+ (and 22.12+) can require() the ES module build, so CommonJS and ESM
// callers share one copy of the package (and `instanceof LogtoError` holds across both).
//
// The declarations describe that ES module through a type-only import with
// `resolution-mode: import` rather than `import x = require('./core.js')`: TypeScript refuses a
// require() of an ES module under `module: node16` (TS1471), and this way a program that loads
// both kinds of entry still sees one set of types (one LogtoError, one LogtoStrategy).
// Types come through `export type *`; values, and the types of classes and constants that share
// their name, are listed here. test/types.test.ts fails when a value of core.ts is missing.
import type * as esm from './core.js' with { 'resolution-mode': 'import' };

export type * from './core.js' with { 'resolution-mode': 'import' };

export declare const LogtoStrategy: typeof esm.LogtoStrategy;
export type LogtoStrategy = esm.LogtoStrategy;
export declare const LogtoClient: typeof esm.LogtoClient;
export type LogtoClient = esm.LogtoClient;
export declare const MemoryTokenStore: typeof esm.MemoryTokenStore;
export type MemoryTokenStore = esm.MemoryTokenStore;
export declare const RedisTokenStore: typeof esm.RedisTokenStore;
export type RedisTokenStore = esm.RedisTokenStore;
export declare const LogtoError: typeof esm.LogtoError;
export type LogtoError = esm.LogtoError;
export declare const isLogtoError: typeof esm.isLogtoError;
export declare const ReservedResource: typeof esm.ReservedResource;
export type ReservedResource = esm.ReservedResource;
export declare const UserScope: typeof esm.UserScope;
export type UserScope = esm.UserScope;
export declare const organizationAudience: typeof esm.organizationAudience;
export declare const ReservedScope: typeof esm.ReservedScope;
export type ReservedScope = esm.ReservedScope;
export declare const buildOrganizationUrn: typeof esm.buildOrganizationUrn;
export declare const getOrganizationIdFromUrn: typeof esm.getOrganizationIdFromUrn;
export declare const organizationUrnPrefix: typeof esm.organizationUrnPrefix;
export declare const FirstScreen: typeof esm.FirstScreen;
export type FirstScreen = esm.FirstScreen;
export declare const Prompt: typeof esm.Prompt;
export type Prompt = esm.Prompt;
export declare const LogtoBearerStrategy: typeof esm.LogtoBearerStrategy;
export type LogtoBearerStrategy = esm.LogtoBearerStrategy;
export declare const logtoBearer: typeof esm.logtoBearer;
export declare const LogtoBearerError: typeof esm.LogtoBearerError;
export type LogtoBearerError = esm.LogtoBearerError;
export declare const LogtoTenants: typeof esm.LogtoTenants;
export type LogtoTenants = esm.LogtoTenants;
export declare const LogtoBearerTenants: typeof esm.LogtoBearerTenants;
export type LogtoBearerTenants = esm.LogtoBearerTenants;
export declare const byHost: typeof esm.byHost;
export declare const byPath: typeof esm.byPath;

module.exports = require('./core.js');
