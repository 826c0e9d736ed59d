/**
 * NestJS 10 on the Express platform (Express 4), with @nestjs/passport 10: the same app and flow
 * as NestJS 11. NestJS 10 is installed apart, in test/nestjs/nest10 (Nest's packages require each
 * other by name, so npm aliases beside NestJS 11 would mix the two majors); module hooks point
 * this file's `@nestjs/*` imports there. Nothing Nest is imported before the hooks are in place.
 */
import assert from 'node:assert/strict';
import { register } from 'node:module';
import { test } from 'node:test';
import { loadNestApp } from './load-nest-app.js';
import { nestFlow } from './nest-flows.js';

register('./nest10-hooks.mjs', import.meta.url);

nestFlow({ load: () => loadNestApp() });

test('the app runs on NestJS 10 and @nestjs/passport 10', async () => {
  const { nestVersions } = await loadNestApp();
  assert.deepEqual(nestVersions(), { core: 10, common: 10, passport: 10, express: 4 });
});
