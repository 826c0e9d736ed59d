import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import type * as NestApp from './nest-app.js';

/**
 * Loads nest-app.ts with the test tsconfig, whose `experimentalDecorators` NestJS's decorators
 * need: `node --import tsx` transforms test files without a tsconfig (the root one covers lib/
 * only). The app, lib/ and the LogtoError class it exports come from that one module graph.
 */
export async function loadNestApp(): Promise<typeof NestApp> {
  return (await tsImport('./nest-app.ts', {
    parentURL: import.meta.url,
    tsconfig: fileURLToPath(new URL('../../tsconfig.test.json', import.meta.url)),
  })) as typeof NestApp;
}
