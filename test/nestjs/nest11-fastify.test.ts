/** NestJS 11 on the Fastify platform (Fastify 5), with @nestjs/passport 11 and @fastify/session. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadNestApp } from './load-nest-app.js';
import { nestFlow } from './nest-flows.js';

nestFlow({ load: () => loadNestApp(), platform: 'fastify' });

test('the app runs on NestJS 11', async () => {
  const { nestVersions } = await loadNestApp();
  assert.equal(nestVersions().core, 11);
});
