/**
 * The folders of lib/ are layers (see CONTRIBUTING.md's Architecture section), and imports flow one
 * way: web/ and bearer/ use store/ and logto/; nothing in store/ or logto/ reaches back up. The
 * tests of a layer sit in the test/ folder of the same name, so that test/ mirrors lib/.
 * Read from the sources, so that no tool beyond Node.js is needed.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';

const lib = new URL('../lib/', import.meta.url).pathname;
const tests = new URL('./', import.meta.url).pathname;
/** Folders of test/ that hold what the tests share, not tests of a layer. */
const testOnlyFolders = new Set(['support', 'types']);

async function foldersOf(path: string): Promise<string[]> {
  return (await readdir(path, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
}

/** Every relative import of every file in lib/, as paths relative to lib/. */
async function imports(): Promise<Array<{ from: string; to: string }>> {
  const edges: Array<{ from: string; to: string }> = [];
  const files = (await readdir(lib, { recursive: true })).filter((file) => /\.c?ts$/.test(file));
  for (const file of files) {
    const text = await readFile(join(lib, file), 'utf8');
    for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(join(lib, file)), specifier as string).replace(/\.js$/, '.ts').replace(/\.cjs$/, '.cts');
      edges.push({ from: file, to: relative(lib, target) });
    }
  }
  return edges;
}

const layerOf = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '.');

/** Sideways imports that are known and accepted; anything else between web/ and bearer/ is flagged. */
const accepted = new Set([
  // LogtoBearerTenants lives beside LogtoTenants.
  'web/bearer-tenants.ts -> bearer/configuration.ts',
  'web/bearer-tenants.ts -> bearer/strategy.ts',
]);

describe('the layers of lib/', () => {
  test('every import points at a file that exists in lib/', async () => {
    const files = new Set((await readdir(lib, { recursive: true })).filter((file) => /\.c?ts$/.test(file)));
    for (const { from, to } of await imports()) {
      assert.ok(files.has(to) || files.has(to.replace(/\.ts$/, '.cts')), `${from} imports ${to}, which is not in lib/`);
    }
  });

  test('store/ and logto/ import nothing from web/ or bearer/', async () => {
    const upward = (await imports()).filter(({ from, to }) => ['store', 'logto'].includes(layerOf(from)) && ['web', 'bearer'].includes(layerOf(to)));
    assert.deepEqual(upward.map(({ from, to }) => `${from} -> ${to}`), []);
  });

  test('errors.ts depends on no other file of lib/', async () => {
    assert.deepEqual((await imports()).filter(({ from }) => from === 'errors.ts'), []);
  });

  test('web/ and bearer/ reach each other only where known', async () => {
    const sideways = (await imports())
      .filter(({ from, to }) => ['web', 'bearer'].includes(layerOf(from)) && ['web', 'bearer'].includes(layerOf(to)) && layerOf(from) !== layerOf(to))
      .map(({ from, to }) => `${from} -> ${to}`);
    assert.deepEqual(sideways.filter((edge) => !accepted.has(edge)), []);
  });

  test('test/ mirrors lib/: each layer has a test folder with tests, and each test folder a layer', async () => {
    const layers = await foldersOf(lib);
    const testFolders = (await foldersOf(tests)).filter((folder) => !testOnlyFolders.has(folder));
    for (const layer of layers) {
      assert.ok(testFolders.includes(layer), `lib/${layer}/ has no test/${layer}/`);
      const files = (await readdir(join(tests, layer))).filter((file) => file.endsWith('.test.ts'));
      assert.ok(files.length > 0, `test/${layer}/ holds no *.test.ts file`);
    }
    assert.deepEqual(testFolders.filter((folder) => !layers.includes(folder)), [], 'test folders without a lib/ layer of the same name');
  });
});
