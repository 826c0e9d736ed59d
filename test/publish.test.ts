// The checks a publisher runs on the packed tarball, as `npm publish` would send it: publint
// (package.json and the files it points at), arethetypeswrong (the types each resolution mode
// finds), and a JavaScript app's install of it, which shows what passport-logto pulls in and
// proves that no type package comes with it. The install runs offline from npm's cache, which
// `npm ci` of this repository filled: its lockfile is cut from this repository's, so the app gets
// exactly the versions tested here. Needs `npm run build` first (npm test does it in pretest).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const run = promisify(execFile);
const root = dirname(dirname(fileURLToPath(import.meta.url)));

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  optional?: boolean;
  peer?: boolean;
  [field: string]: unknown;
}
interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}
interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

let workspace: string;
let tarball: string;
let manifest: Manifest;

before(async () => {
  assert.ok(existsSync(join(root, 'dist', 'index.js')), 'dist/ is missing: run npm run build first');
  workspace = await mkdtemp(join(tmpdir(), 'passport-logto-publish-'));
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', workspace], { cwd: root });
  const [packed] = JSON.parse(stdout) as [{ filename: string }];
  tarball = join(workspace, packed.filename);
  manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Manifest;
});

after(async () => {
  if (workspace) await rm(workspace, { recursive: true, force: true });
});

/**
 * Where Node.js (and npm) finds `name` for the package at `from`: its own node_modules, then
 * each parent's, as in the lockfile's paths.
 */
function resolveIn(lock: Lockfile, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (base === '') return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut === -1 ? '' : base.slice(0, cut);
  }
}

/** The lockfile entries that an install of `names` needs: their dependencies, all the way down, at their paths. */
function closure(lock: Lockfile, names: readonly string[]): Map<string, LockEntry> {
  const found = new Map<string, LockEntry>();
  const visit = (from: string, name: string, optional: boolean): void => {
    const path = resolveIn(lock, from, name);
    if (path === undefined) {
      if (optional) return;
      assert.fail(`${name} (needed by ${from || 'the app'}) is not in package-lock.json`);
    }
    if (found.has(path)) return;
    const entry = lock.packages[path] as LockEntry;
    found.set(path, entry);
    for (const dependency of Object.keys(entry.dependencies ?? {})) visit(path, dependency, false);
    for (const dependency of Object.keys(entry.optionalDependencies ?? {})) visit(path, dependency, true);
    // npm installs peers that are not optional.
    for (const [peer] of Object.entries(entry.peerDependencies ?? {}).filter(([peer]) => entry.peerDependenciesMeta?.[peer]?.optional !== true)) {
      visit(path, peer, false);
    }
  };
  for (const name of names) visit('', name, false);
  return found;
}

/** Every package installed under `dir`'s node_modules, as name@version. */
async function installed(dir: string): Promise<string[]> {
  const packages: string[] = [];
  const walk = async (modules: string): Promise<void> => {
    if (!existsSync(modules)) return;
    for (const entry of await readdir(modules)) {
      if (entry.startsWith('.')) continue;
      const names = entry.startsWith('@') ? (await readdir(join(modules, entry))).map((scoped) => `${entry}/${scoped}`) : [entry];
      for (const name of names) {
        const { version } = JSON.parse(await readFile(join(modules, name, 'package.json'), 'utf8')) as { version: string };
        packages.push(`${name}@${version}`);
        await walk(join(modules, name, 'node_modules'));
      }
    }
  };
  await walk(join(dir, 'node_modules'));
  return packages.sort();
}

/** Bytes on disk under `path`. */
async function sizeOf(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const entry of await readdir(path)) total += await sizeOf(join(path, entry));
  return total;
}

describe('the packed tarball, as a publisher checks it', () => {
  test('publint finds nothing, not even a suggestion', async () => {
    const bytes = await readFile(tarball);
    const packed = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const { messages, pkg } = await publint({ pack: { tarball: packed }, level: 'suggestion', strict: true });
    const found = messages.map((message) => `${message.type}: ${formatMessage(message, pkg) ?? message.code}`);
    assert.deepEqual(found, []);
  });

  test('arethetypeswrong finds no problem under any resolution (node10, node16 from CommonJS and ESM, bundler)', async () => {
    const attw = join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js');
    let stdout: string;
    try {
      ({ stdout } = await run(process.execPath, [attw, tarball, '--format', 'json'], { cwd: workspace, maxBuffer: 64 * 1024 * 1024 }));
    } catch (error) {
      // attw exits 1 when it finds a problem; its JSON still says which.
      stdout = (error as { stdout?: string }).stdout ?? '';
      if (stdout === '') throw error;
    }
    const report = JSON.parse(stdout) as {
      problems: Record<string, unknown>;
      analysis: {
        problems: unknown[];
        entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName: string } }> }>;
      };
    };
    assert.deepEqual(report.analysis.problems, []);
    assert.deepEqual(report.problems, {});
    const resolved = Object.fromEntries(
      Object.entries(report.analysis.entrypoints['.']?.resolutions ?? {}).map(([kind, { resolution }]) => [kind, resolution?.fileName.replace(/^.*\/dist\//, 'dist/')]),
    );
    assert.deepEqual(resolved, { node10: 'dist/index.d.ts', 'node16-cjs': 'dist/index.d.cts', 'node16-esm': 'dist/index.d.ts', bundler: 'dist/index.d.ts' });
  });

  test('a JavaScript app that installs it gets no @types package', async (t) => {
    const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as Lockfile;
    const app = join(workspace, 'javascript-app');
    await mkdir(app);
    // What the app itself depends on for a Passport sign-in: the peers, then passport-logto.
    const appDependencies = ['express', 'express-session', 'passport'];
    const fromThisRepository = closure(lock, [...Object.keys(manifest.dependencies ?? {}), ...appDependencies]);
    const tarballName = tarball.slice(tarball.lastIndexOf('/') + 1);
    const integrity = `sha512-${createHash('sha512').update(await readFile(tarball)).digest('base64')}`;
    const versionOf = (name: string): string => `^${(lock.packages[`node_modules/${name}`] as LockEntry).version ?? ''}`;
    const dependencies: Record<string, string> = { 'passport-logto': `file:../${tarballName}` };
    for (const name of appDependencies) dependencies[name] = versionOf(name);
    const packages: Record<string, LockEntry> = {
      '': { name: 'javascript-app', dependencies },
      'node_modules/passport-logto': {
        version: manifest.version,
        resolved: `file:../${tarballName}`,
        integrity,
        license: 'MIT',
        dependencies: manifest.dependencies,
        peerDependencies: manifest.peerDependencies,
        peerDependenciesMeta: manifest.peerDependenciesMeta,
      },
    };
    for (const [path, entry] of fromThisRepository) {
      const { dev: _dev, peer: _peer, ...kept } = entry;
      packages[path] = kept;
    }
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'javascript-app', private: true, dependencies }, null, 2));
    await writeFile(join(app, 'package-lock.json'), JSON.stringify({ name: 'javascript-app', lockfileVersion: 3, requires: true, packages }, null, 2));

    try {
      await run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--omit=dev'], { cwd: app, maxBuffer: 16 * 1024 * 1024 });
    } catch (error) {
      const { stderr } = error as { stderr?: string };
      assert.fail(`npm ci --offline failed (was npm ci run in this repository first, so that npm's cache holds every package?):\n${stderr ?? String(error)}`);
    }

    const all = await installed(app);
    const brought = all.filter((spec) => !spec.startsWith('passport-logto@'));
    const appOwn = new Set(
      [...closure(lock, appDependencies)].map(([path, entry]) => `${path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${entry.version ?? ''}`),
    );
    const byPassportLogto = brought.filter((spec) => !appOwn.has(spec));
    const size = await sizeOf(join(app, 'node_modules'));
    const ownSize = await sizeOf(join(app, 'node_modules', 'passport-logto'));
    t.diagnostic(`the app installs ${all.length} packages, ${(size / 1e6).toFixed(1)} MB; passport-logto itself ${(ownSize / 1e6).toFixed(2)} MB`);
    t.diagnostic(`what passport-logto adds to an Express + Passport app: ${byPassportLogto.join(', ')}`);

    assert.deepEqual(all.filter((spec) => spec.startsWith('@types/')), [], 'no @types package in a JavaScript install');
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      assert.ok(all.some((spec) => spec.startsWith(`${name}@`)), `${name} is installed`);
    }

    // And the installed package runs, from CommonJS and from an ES module.
    const cjs = await run(process.execPath, ['-e', "const { LogtoStrategy } = require('passport-logto'); console.log(typeof LogtoStrategy)"], { cwd: app });
    assert.equal(cjs.stdout.trim(), 'function');
    const esm = await run(process.execPath, ['--input-type=module', '-e', "const { LogtoStrategy } = await import('passport-logto'); console.log(typeof LogtoStrategy)"], { cwd: app });
    assert.equal(esm.stdout.trim(), 'function');
  });
});
