// passport-logto/nestjs from a CommonJS consumer (import = require), so that it loads
// dist/nestjs/index.d.cts; test/types.test.ts type-checks it with skipLibCheck: false.
import nestjs = require('passport-logto/nestjs');
import type * as esm from 'passport-logto/nestjs' with { 'resolution-mode': 'import' };
import type { CanActivate, Type } from '@nestjs/common';

// The CommonJS declarations have every value of the ES module.
const everyValue: { [name in keyof typeof esm]: unknown } = nestjs;
const guard: Type<CanActivate> = nestjs.LogtoAuthenticatedGuard({ redirect: '/sign-in' });
const path: string = nestjs.takeReturnTo({}, '/');

// @ts-expect-error the strategy name is a string
nestjs.LogtoAuthGuard(1);

export = { everyValue, guard, path };
