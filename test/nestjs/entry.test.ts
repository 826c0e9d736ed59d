/**
 * The passport-logto/nestjs entry as a package consumer loads it (dist/, which `npm test` builds
 * first): the ES module and CommonJS entries are one module, the root entry never loads NestJS,
 * and only lib/nestjs imports @nestjs/*.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as core from '../../lib/core.js';
import * as nestjs from '../../lib/nestjs/index.js';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;

describe('passport-logto/nestjs', () => {
  test('require() and import give the same module, with the values of lib/nestjs', async () => {
    // In a plain Node process: tsx's require hook would compile its own copy of dist/.
    const script = [
      "const { createRequire } = await import('node:module');",
      'const require = createRequire(import.meta.url);',
      "const imported = await import('passport-logto/nestjs');",
      "const required = require('passport-logto/nestjs');",
      'const same = Object.keys(imported).filter((name) => required[name] === imported[name]);',
      "const oneError = require('passport-logto').LogtoError === (await import('passport-logto')).LogtoError;",
      'console.log(JSON.stringify({ names: Object.keys(imported).sort(), same: same.sort(), oneError }));',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
    const { names, same, oneError } = JSON.parse(stdout) as { names: string[]; same: string[]; oneError: boolean };
    assert.deepEqual(names, Object.keys(nestjs).sort());
    assert.deepEqual(same, names, 'require() gives the ES module itself');
    assert.equal(oneError, true, 'one LogtoError class for both entries');
  });

  test("the CommonJS declarations name every value of the ES module: its own in nestjs/index.cts, the core's in core.cts", async () => {
    const own = await readFile(join(root, 'lib', 'nestjs', 'index.cts'), 'utf8');
    const shared = await readFile(join(root, 'lib', 'core.cts'), 'utf8');
    assert.match(own, /^export \* from '\.\.\/core\.cjs';$/m, 'nestjs/index.cts re-exports the core');
    for (const name of Object.keys(nestjs)) {
      assert.match(name in core ? shared : own, new RegExp(`export declare const ${name}:`), name);
    }
  });

  test('the root entry loads no @nestjs package: an Express app needs none installed', async () => {
    const script = "await import('passport-logto'); const loaded = Object.keys((await import('node:module')).createRequire(import.meta.url).cache).filter((file) => file.includes('/@nestjs/')); console.log(JSON.stringify(loaded));";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
    assert.deepEqual(JSON.parse(stdout), []);
  });

  test('only lib/nestjs imports @nestjs/*', async () => {
    const files = (await readdir(join(root, 'lib'), { recursive: true })).filter((file) => /\.c?ts$/.test(file));
    const importing: string[] = [];
    for (const file of files) {
      if (/@nestjs\//.test(await readFile(join(root, 'lib', file), 'utf8').then((text) => [...text.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]).join(' ')))) importing.push(file);
    }
    assert.ok(importing.length > 0);
    assert.deepEqual(importing.filter((file) => !file.startsWith('nestjs/')), []);
  });
});
