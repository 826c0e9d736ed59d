// The pieces of passport-logto/nestjs; index.ts adds the core.
export { LogtoAuthGuard, LogtoAuthenticatedGuard, LogtoBearerGuard, LogtoSignOutGuard } from './guards.js';
export type { LogtoAuthenticatedGuardOptions, LogtoBearerGuardOptions, LogtoGuardStrategyOption, LogtoSignOutGuardOptions } from './guards.js';
export { toHttpException } from './errors.js';
export type { LogtoHttpExceptionBody } from './errors.js';
export { takeReturnTo } from './return-to.js';
export { logtoNestFastify } from './platform.js';
export type { NestFastifyPlugin } from './platform.js';
