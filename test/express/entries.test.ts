/**
 * The package's entries by host, as an app imports them (from the built package, through its
 * "exports"): passport-logto/express is the root under the host's name, and each host's entry is
 * one module for ES module and CommonJS callers alike. Run in a plain Node.js process: the test
 * runner's TypeScript loader would load a second copy for require().
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;

/** Runs `code` as an ES module in plain Node.js, in the package's folder; resolves with what it prints. */
async function inNode(code: string): Promise<unknown> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: root });
  return JSON.parse(stdout) as unknown;
}

describe('the entries by host', () => {
  test('passport-logto/express gives what the root gives, the same values, from ESM and CommonJS', async () => {
    const mismatches = await inNode(`
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const root = await import('passport-logto');
      const express = await import('passport-logto/express');
      const required = require('passport-logto/express');
      const names = Object.keys(root).filter((name) => name !== 'default');
      const mismatches = names.filter((name) => express[name] !== root[name] || required[name] !== root[name]);
      const extra = Object.keys(express).filter((name) => name !== 'default' && !names.includes(name));
      console.log(JSON.stringify({ names: names.length, mismatches, extra }));
    `);
    assert.deepEqual(mismatches, { names: (mismatches as { names: number }).names, mismatches: [], extra: [] });
    assert.ok((mismatches as { names: number }).names > 20, 'the root has its values');
  });

  test('passport-logto/koa and passport-logto/fastify are one module for both kinds of caller', async () => {
    const same = await inNode(`
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const koa = await import('passport-logto/koa');
      const fastify = await import('passport-logto/fastify');
      console.log(JSON.stringify([
        typeof koa.logtoKoa, require('passport-logto/koa').logtoKoa === koa.logtoKoa,
        typeof fastify.logtoFastify, require('passport-logto/fastify').logtoFastify === fastify.logtoFastify,
      ]));
    `);
    assert.deepEqual(same, ['function', true, 'function', true]);
  });

  test('passport-logto/fastify, /koa and /nestjs give every value of the root too, the same values, from ESM and CommonJS', async () => {
    const mismatches = await inNode(`
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const root = await import('passport-logto');
      const names = Object.keys(root).filter((name) => name !== 'default');
      const found = {};
      for (const host of ['fastify', 'koa', 'nestjs']) {
        const esm = await import('passport-logto/' + host);
        const cjs = require('passport-logto/' + host);
        found[host] = names.filter((name) => esm[name] !== root[name] || cjs[name] !== root[name]);
      }
      console.log(JSON.stringify(found));
    `);
    assert.deepEqual(mismatches, { fastify: [], koa: [], nestjs: [] });
  });

  test('an adapter refuses what is not a LogtoStrategy', async () => {
    const refused = await inNode(`
      const { logtoKoa } = await import('passport-logto/koa');
      const { logtoFastify } = await import('passport-logto/fastify');
      const codes = [logtoKoa, logtoFastify].map((adapter) => { try { adapter({}); return 'accepted'; } catch (error) { return error.code; } });
      console.log(JSON.stringify(codes));
    `);
    assert.deepEqual(refused, ['invalid_config', 'invalid_config']);
  });
});
