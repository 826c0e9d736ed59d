/**
 * The API reference (`npm run docs`, TypeDoc over lib/index.ts) builds, so that it cannot rot:
 * every type the public API names is documented, apart from a few internals that public classes
 * hold in members an app never touches.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';

const root = new URL('..', import.meta.url).pathname;

/** Internals that a public class holds in a member; none is part of what an app writes or reads. */
const internals = ['ResolvedConfig', 'PendingSignIns', 'LogtoConnection', 'SignInState', 'LogtoContext', 'accessTokenKey'];

test('npm run docs builds the API reference from lib/index.ts, without an undocumented public type', async () => {
  const out = await mkdtemp(join(tmpdir(), 'passport-logto-docs-'));
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(root, 'node_modules/typedoc/bin/typedoc'), '--out', out, '--disableGit', '--sourceLinkTemplate', '{path}#L{line}'], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    const output = `${stdout}\n${stderr}`;
    assert.doesNotMatch(output, /\[error\]/, output);
    const missing = output
      .split('\n')
      .filter((line) => /not included in the documentation/.test(line))
      .filter((line) => !internals.some((name) => line.includes(` ${name},`) || line.includes(`"${name}"`)));
    assert.deepEqual(missing, [], 'every type the public API names is in the reference');
    for (const page of ['index.html', 'classes/LogtoStrategy.html', 'classes/LogtoError.html', 'functions/logtoBearer.html', 'types/LogtoErrorCode.html']) {
      assert.ok(existsSync(join(out, page)), `the reference has ${page}`);
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
