/**
 * The README's Quick start, run as a newcomer runs it: the file pasted as app.mjs, started with
 * `node app.mjs` against `npm run provider`'s local Logto, and signed in to in a browser.
 * test/readme-snippets.test.ts type-checks it with `strict`, with every other snippet. And every
 * link between README.md, CONTRIBUTING.md and docs/*.md leads somewhere, as sections move between them.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { signInAtProvider, TestBrowser } from './support/http-client.js';
import { readSnippets } from './support/readme-snippets.js';
import { freePort } from './support/redis.js';

const root = new URL('..', import.meta.url).pathname;
// Inside the package, so that `import 'passport-logto'` resolves to this package as it would from npm.
const folder = join(root, 'test-results', `readme-${process.pid}`);

/** The README's block marked `<!-- snippet <id>: ... -->`. */
function snippet(id: string): string {
  const found = readSnippets(join(root, 'README.md')).find((each) => each.id === id);
  assert.ok(found, `README.md has the snippet "${id}"`);
  return found.code;
}

/** Starts a process and resolves once its output matches `ready`, with everything it printed. */
function startUntil(command: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(command, args, { cwd: folder, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not get ready:\n${output}`)), 60_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve({ child, output: () => output });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}:\n${output}`));
    });
  });
}

const children: ChildProcess[] = [];
before(async () => {
  await mkdir(folder, { recursive: true });
});
after(async () => {
  for (const child of children) child.kill('SIGTERM');
  await rm(folder, { recursive: true, force: true });
});

describe('README Quick start', () => {
  test('pasted as app.mjs, it runs with `node app.mjs` against `npm run provider`, and a user signs in and out', async () => {
    await writeFile(join(folder, 'app.mjs'), snippet('quick-start'));
    const provider = await startUntil(process.execPath, ['--import', 'tsx', join(root, 'example', 'provider.ts')], { PORT: '0' }, /export SESSION_SECRET=\S+/);
    children.push(provider.child);
    const env: Record<string, string> = {};
    for (const [, name, value] of provider.output().matchAll(/export (LOGTO_\w+|SESSION_SECRET)=(\S+)/g)) env[name as string] = value as string;
    assert.ok(env.LOGTO_ENDPOINT && env.LOGTO_APP_ID && env.LOGTO_APP_SECRET && env.SESSION_SECRET, 'npm run provider prints the four variables');

    const port = await freePort();
    const app = await startUntil(process.execPath, ['app.mjs'], { ...env, PORT: String(port) }, /Open http/);
    children.push(app.child);
    const base = `http://127.0.0.1:${port}`;
    assert.match(app.output(), new RegExp(`Open ${base}`));

    const browser = new TestBrowser();
    assert.match((await browser.get(`${base}/`)).text, /Sign in/);
    const started = await browser.get(`${base}/sign-in`);
    assert.equal(started.status, 302);
    const callback = await signInAtProvider(browser, started.location ?? '', { username: 'demo', password: 'demo-password' }, `${base}/callback`);
    assert.equal((await browser.get(callback)).location, `${base}/`);
    assert.match((await browser.get(`${base}/`)).text, /Signed in/);
    const profile = await browser.get(`${base}/profile`);
    assert.equal(profile.status, 200);
    assert.equal((JSON.parse(profile.text) as { username: string }).username, 'demo');

    const signOut = await browser.request(`${base}/sign-out`, { method: 'POST', headers: { origin: base } });
    assert.equal(signOut.status, 302);
    assert.ok(signOut.location?.startsWith(`${env.LOGTO_ENDPOINT}/oidc/session/end`), signOut.location);
    assert.match((await browser.get(`${base}/`)).text, /Sign in/);
    assert.equal((await browser.get(`${base}/profile`)).location, `${base}/sign-in`);
  });
});

/** The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function headingAnchors(path: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) inFence = !inFence;
    const heading = inFence ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (!heading) continue;
    const slug = (heading[1] ?? '').trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

describe('README.md and docs/*.md links', () => {
  test('every relative link leads to a file, and its #anchor to a heading there', () => {
    const docs = readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`);
    const broken: string[] = [];
    for (const file of ['README.md', 'CONTRIBUTING.md', 'example/README.md', ...docs]) {
      // Code blocks hold no links, only text that may look like one.
      const text = readFileSync(join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target = ''] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target)) continue;
        const [path = '', anchor] = target.split('#');
        const linked = path === '' ? join(root, file) : resolve(dirname(join(root, file)), path);
        if (!existsSync(linked)) broken.push(`${file}: ${target} (no such file)`);
        else if (anchor && linked.endsWith('.md') && !headingAnchors(linked).has(anchor)) broken.push(`${file}: ${target} (no such heading)`);
      }
    }
    assert.deepEqual(broken, []);
  });
});
