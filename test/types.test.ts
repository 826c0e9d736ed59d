// The published types, as a consumer sees them: packs the package with `npm pack`, installs the
// tarball into a throwaway project (its dependencies are linked from this repository's
// node_modules, so nothing is downloaded), and type-checks a small app with `strict`,
// `exactOptionalPropertyTypes` and `skipLibCheck: false` as an ES module and as a CommonJS
// consumer under node16, nodenext and bundler resolution, with the oldest TypeScript the README
// supports (5.3) and the newest installed. Fastify and Koa apps get projects of their own, whose
// node_modules hold what such an app installs (no @types/express of their own). Needs `npm run build`
// first (npm test does it in pretest).
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

/**
 * The node_modules of each kind of consumer, in folders of their own (TypeScript includes every
 * @types package of the folders above a project). Fastify: no @types/express nor @types/passport
 * (see test/types/fastify.ts for why @fastify/passport is not there). Koa: @types/koa-passport
 * depends on @types/passport, which depends on @types/express; they come in through it.
 */
const trees = {
  express: [...consumerDependencies, ...nestDependencies],
  fastify: ['fastify', '@fastify/secure-session', '@types/node'],
  koa: ['koa', 'koa-passport', 'koa-session', '@types/koa', '@types/koa-passport', '@types/node'],
};
type Tree = keyof typeof trees;

interface Setting {
  name: string;
  type: 'module' | 'commonjs';
  fixture: 'esm.ts' | 'cjs.ts' | 'nestjs-esm.ts' | 'nestjs-cjs.ts' | 'fastify.ts' | 'koa.ts';
  /** Whose node_modules the project sees; Express's by default. */
  tree?: Tree;
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
  // Fastify 5's own declarations need TypeScript 5.4 (NoInfer).
  { name: 'Fastify without @types/express, ESM, nodenext', type: 'module', fixture: 'fastify.ts', module: 'nodenext', moduleResolution: 'nodenext', tree: 'fastify', since: '5.4' },
  { name: 'Koa, ESM, nodenext', type: 'module', fixture: 'koa.ts', module: 'nodenext', moduleResolution: 'nodenext', tree: 'koa' },
];

let workspace: string;
let unpacked: string;
let manifest: { dependencies?: Record<string, string>; scripts?: Record<string, string> };


/** The directory of one consumer project. */
function projectOf(setting: Setting): string {
  return join(workspace, setting.tree ?? 'express', setting.name.replace(/\W+/g, '-'));
}

/** Links an installed package of this repository into the node_modules of a tree of projects. */
async function link(name: string, tree: Tree): Promise<void> {
  const installed = join(root, 'node_modules', name);
  assert.ok(existsSync(installed), `${name} is not installed in this repository; run npm ci`);
  const target = join(workspace, tree, 'node_modules', name);
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
  for (const tree of Object.keys(trees) as Tree[]) {
    const into = join(workspace, tree, 'node_modules', 'passport-logto');
    await mkdir(into, { recursive: true });
    await run('tar', ['-xzf', join(workspace, packed.filename), '-C', into, '--strip-components=1']);
  }
  unpacked = join(workspace, 'express', 'node_modules', 'passport-logto');

  // What `npm install passport-logto` would add: the package's own dependencies, hoisted beside
  // the app's. Linking nothing else means that a type the package forgets to depend on fails.
  manifest = JSON.parse(await readFile(join(unpacked, 'package.json'), 'utf8')) as typeof manifest;
  for (const [tree, dependencies] of Object.entries(trees) as Array<[Tree, string[]]>) {
    const names = new Set([...dependencies, ...Object.keys(manifest.dependencies ?? {})]);
    await Promise.all([...names].map((name) => link(name, tree)));
  }

  for (const setting of settings) {
    const project = projectOf(setting);
    await mkdir(project, { recursive: true });
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
      // @types/koa reads content-disposition's types. A Koa app has Koa's content-disposition
      // (1.x, typed by @types/content-disposition); this repository hoists Express 5's (2.x, with
      // types of its own that lack what @types/koa reads), which the linked @types/koa would find.
      ...(setting.tree === 'koa' ? { paths: { 'content-disposition': [join(root, 'node_modules', '@types', 'content-disposition', 'index.d.ts')] } } : {}),
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
    assert.ok(!existsSync(join(workspace, 'express', 'node_modules', '@types', 'passport-strategy')), 'the consumers above type-check without @types/passport-strategy');
  });

  test("the Fastify consumer's program holds no file of @types/express or @types/passport", async () => {
    const fastify = settings.find((setting) => setting.tree === 'fastify') as Setting;
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const { stdout } = await run(process.execPath, [tsc, '--listFilesOnly', '-p', projectOf(fastify)], { cwd: projectOf(fastify), maxBuffer: 16 * 1024 * 1024 });
    const files = stdout.split('\n');
    assert.ok(files.some((file) => file.includes('/passport-logto/dist/fastify/')), 'the program holds passport-logto/fastify');
    assert.deepEqual(files.filter((file) => /\/@types\/(express|express-serve-static-core|passport)\//.test(file)), []);
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
