// The published types, as a consumer sees them: packs the package with `npm pack`, installs the
// tarball into a throwaway project (its dependencies are linked from this repository's
// node_modules, so nothing is downloaded), and type-checks a small app with `strict`,
// `exactOptionalPropertyTypes` and `skipLibCheck: false` as an ES module and as a CommonJS
// consumer under node16, nodenext and bundler resolution, with the oldest TypeScript the README
// supports (5.3) and the newest installed. Needs `npm run build` first (npm test does it in pretest).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const fixtures = join(root, 'test', 'types');
/** The TypeScript versions a consumer may use: the minimum the README states, and the newest. */
const compilers = [
  { name: 'TypeScript 5.3', tsc: join(root, 'node_modules', 'typescript53', 'bin', 'tsc'), minimum: true },
  { name: 'TypeScript (latest installed)', tsc: join(root, 'node_modules', 'typescript', 'bin', 'tsc'), minimum: false },
];

/** What a Passport + Express app written in TypeScript has installed next to passport-logto. */
const consumerDependencies = [
  'express',
  'express-session',
  'passport',
  '@types/express',
  '@types/express-session',
  '@types/node',
  '@types/passport',
];

/** What a NestJS app has installed besides: only its settings import them. */
const nestDependencies = ['@nestjs/common', '@nestjs/core', '@nestjs/passport', 'reflect-metadata', 'rxjs'];

interface Setting {
  name: string;
  type: 'module' | 'commonjs';
  fixture: 'esm.ts' | 'cjs.ts' | 'nestjs-esm.ts' | 'nestjs-cjs.ts';
  module: string;
  moduleResolution: string;
  /** The first TypeScript version that knows this `module` setting. */
  since?: '5.4';
}

const settings: Setting[] = [
  { name: 'ESM, node16', type: 'module', fixture: 'esm.ts', module: 'node16', moduleResolution: 'node16' },
  { name: 'ESM, nodenext', type: 'module', fixture: 'esm.ts', module: 'nodenext', moduleResolution: 'nodenext' },
  { name: 'ESM, bundler (module esnext)', type: 'module', fixture: 'esm.ts', module: 'esnext', moduleResolution: 'bundler' },
  { name: 'CommonJS, node16', type: 'commonjs', fixture: 'cjs.ts', module: 'node16', moduleResolution: 'node16' },
  { name: 'CommonJS, nodenext', type: 'commonjs', fixture: 'cjs.ts', module: 'nodenext', moduleResolution: 'nodenext' },
  { name: 'CommonJS, bundler (module preserve)', type: 'commonjs', fixture: 'cjs.ts', module: 'preserve', moduleResolution: 'bundler', since: '5.4' },
  { name: 'NestJS, ESM, nodenext', type: 'module', fixture: 'nestjs-esm.ts', module: 'nodenext', moduleResolution: 'nodenext' },
  { name: 'NestJS, CommonJS, node16', type: 'commonjs', fixture: 'nestjs-cjs.ts', module: 'node16', moduleResolution: 'node16' },
];

let workspace: string;
let unpacked: string;
let manifest: { dependencies?: Record<string, string>; scripts?: Record<string, string> };


/** The directory of one consumer project. */
function projectOf(setting: Setting): string {
  return join(workspace, setting.name.replace(/\W+/g, '-'));
}

/** Links an installed package of this repository into the throwaway project's node_modules. */
async function link(name: string): Promise<void> {
  const installed = join(root, 'node_modules', name);
  assert.ok(existsSync(installed), `${name} is not installed in this repository; run npm ci`);
  const target = join(workspace, 'node_modules', name);
  await mkdir(dirname(target), { recursive: true });
  await symlink(installed, target, 'dir');
}

/** `tsc --noEmit` on one consumer; resolves to its diagnostics, empty when it compiles. */
async function typeCheck(tsc: string, project: string): Promise<string> {
  try {
    await run(process.execPath, [tsc, '--noEmit', '-p', project], { cwd: project });
    return '';
  } catch (error) {
    const { stdout, stderr, message } = error as { stdout?: string; stderr?: string; message: string };
    return `${stdout ?? ''}${stderr ?? ''}`.trim() || message;
  }
}

before(async () => {
  assert.ok(existsSync(join(root, 'dist', 'index.js')), 'dist/ is missing: run npm run build first');
  workspace = await mkdtemp(join(tmpdir(), 'passport-logto-types-'));

  // --ignore-scripts: pretest has just built dist/, and prepack would build it again.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', workspace], { cwd: root });
  const [packed] = JSON.parse(stdout) as [{ filename: string }];
  unpacked = join(workspace, 'node_modules', 'passport-logto');
  await mkdir(unpacked, { recursive: true });
  await run('tar', ['-xzf', join(workspace, packed.filename), '-C', unpacked, '--strip-components=1']);

  // What `npm install passport-logto` would add: the package's own dependencies, hoisted beside
  // the app's. Linking nothing else means that a type the package forgets to depend on fails.
  manifest = JSON.parse(await readFile(join(unpacked, 'package.json'), 'utf8')) as typeof manifest;
  const names = new Set([...consumerDependencies, ...nestDependencies, ...Object.keys(manifest.dependencies ?? {})]);
  await Promise.all([...names].map(link));

  for (const setting of settings) {
    const project = projectOf(setting);
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: setting.type }));
    await copyFile(join(fixtures, setting.fixture), join(project, 'index.ts'));
    const compilerOptions = {
      target: 'ES2022',
      lib: ['ES2022'],
      module: setting.module,
      moduleResolution: setting.moduleResolution,
      strict: true,
      exactOptionalPropertyTypes: true,
      skipLibCheck: false,
      esModuleInterop: true,
      noEmit: true,
      // As a Nest app's tsconfig has it; the other consumers have no decorators.
      ...(setting.fixture.startsWith('nestjs') ? { experimentalDecorators: true } : {}),
    };
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['index.ts'] }, null, 2));
  }
});

after(async () => {
  if (workspace) await rm(workspace, { recursive: true, force: true });
});

describe('the packed package', () => {
  for (const compiler of compilers) {
    const checked = settings.filter((setting) => !(compiler.minimum && setting.since !== undefined));
    test(`type-checks with ${compiler.name} in a strict consumer with exactOptionalPropertyTypes and skipLibCheck: false`, { concurrency: Math.min(availableParallelism(), checked.length) }, async (t) => {
      assert.ok(existsSync(compiler.tsc), `${compiler.name} is not installed; run npm ci`);
      if (compiler.minimum) {
        const { stdout } = await run(process.execPath, [compiler.tsc, '--version']);
        assert.match(stdout, /Version 5\.3\./, 'the minimum TypeScript the README states');
      }
      await Promise.all(
        checked.map((setting) =>
          t.test(setting.name, async () => {
            const diagnostics = await typeCheck(compiler.tsc, projectOf(setting));
            if (diagnostics !== '') assert.fail(`${compiler.name}: tsc --noEmit failed for ${setting.name}:\n${diagnostics}`);
          }),
        ),
      );
    });
  }

  test('needs no @types package at run time: type packages are optional peers or dev dependencies', () => {
    const runtime = Object.keys(manifest.dependencies ?? {});
    assert.deepEqual(runtime.filter((name) => name.startsWith('@types/')), [], `dependencies: ${runtime.join(', ')}`);
    assert.ok(!existsSync(join(workspace, 'node_modules', '@types', 'passport-strategy')), 'the consumers above type-check without @types/passport-strategy');
  });

  test('ships no install script', () => {
    for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) {
      assert.equal(manifest.scripts?.[script], undefined, `package.json has a ${script} script`);
    }
  });

  test('has a LICENSE, and every source map carries its sources', async () => {
    assert.ok(existsSync(join(unpacked, 'LICENSE')), 'LICENSE is in the package');
    const maps = (await readdir(join(unpacked, 'dist'))).filter((file) => file.endsWith('.map'));
    for (const file of maps) {
      const map = JSON.parse(await readFile(join(unpacked, 'dist', file), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      map.sources.forEach((source, index) => {
        const inline = typeof map.sourcesContent?.[index] === 'string';
        const shipped = existsSync(join(unpacked, 'dist', source));
        assert.ok(inline || shipped, `dist/${file} points at ${source}, which is neither inline nor in the package`);
      });
    }
  });
});
