/** NestJS 11 on the Express platform, with @nestjs/passport 11. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadNestApp } from './load-nest-app.js';
import { nestFlow } from './nest-flows.js';

nestFlow({ load: () => loadNestApp() });

test('the app runs on NestJS 11 and @nestjs/passport 11', async () => {
  const { nestVersions } = await loadNestApp();
  assert.deepEqual(nestVersions(), { core: 11, common: 11, passport: 11, express: 5 });
});
