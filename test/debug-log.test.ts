/** The debug log (NODE_DEBUG=passport-logto): why each decision went the way it did, and never a token or secret. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';

const root = new URL('..', import.meta.url).pathname;

async function runFlow(nodeDebug: string | undefined): Promise<{ log: string; secrets: string[]; callbackURL: string }> {
  const env = { ...process.env };
  delete env.NODE_DEBUG;
  if (nodeDebug !== undefined) env.NODE_DEBUG = nodeDebug;
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/debug-flow.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, stderr);
  const printed = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { secrets: string[]; callbackURL: string };
  return { log: stderr, ...printed };
}

describe('NODE_DEBUG=passport-logto', () => {
  test('says why each sign-in, refresh and guard decision went as it did, with no token, code or secret in it', async () => {
    const { log, secrets, callbackURL } = await runFlow('passport-logto');
    const lines = log.split('\n').filter((line) => line.startsWith('PASSPORT-LOGTO '));
    const said = (pattern: RegExp): void => assert.ok(lines.some((line) => pattern.test(line)), `no line matches ${pattern}:\n${lines.join('\n')}`);
    said(/guard: GET \/protected has no live sign-in; sending the browser to sign in/);
    said(new RegExp(`sign-in: sending the browser to Logto with redirect_uri=${callbackURL.replace(/[.]/g, '\\.')}, prompt=consent, scope=openid offline_access profile read:items, resource=https://api\\.example\\.com`));
    said(/callback: signed in$/);
    said(/refresh: Logto answered for https:\/\/api\.example\.com; its refresh token rotated/);
    said(/callback: failed with invalid_state \(Passport fail\): This sign-in is unknown to this browser/);

    // The flow handled ID, access and refresh tokens, a code, a PKCE verifier and the app secret.
    assert.ok(secrets.length >= 7, `the flow should report its secrets, got ${secrets.length}`);
    for (const secret of secrets) assert.ok(!log.includes(secret), `the log holds a secret (${secret.slice(0, 8)}...)`);
    assert.doesNotMatch(log, /eyJ[\w-]+\.[\w-]+\./, 'no JWT at all');
  });

  test('without NODE_DEBUG the package prints nothing', async () => {
    const { log } = await runFlow(undefined);
    assert.doesNotMatch(log, /PASSPORT-LOGTO/);
  });
});
