// Module hooks for nest10-express.test.ts: `@nestjs/*` imported from the project's own files
// (lib/nestjs, the test app) resolves to NestJS 10 in test/nestjs/nest10. Nest's packages then
// require each other from there, so the whole app runs on NestJS 10 while node_modules holds 11.
const fixture = new URL('./nest10/package.json', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL ?? '';
  if (specifier.startsWith('@nestjs/') && parent.startsWith('file:') && !parent.includes('/node_modules/')) {
    return nextResolve(specifier, { ...context, parentURL: fixture });
  }
  return nextResolve(specifier, context);
}
