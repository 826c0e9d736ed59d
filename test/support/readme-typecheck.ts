// Type-checks the files named on the command line (see typeCheck in readme-snippets.ts) and prints
// each one's errors as JSON. A process of its own, so that it runs beside the README's snippets.
import { typeCheck } from './readme-snippets.js';

process.stdout.write(JSON.stringify(Object.fromEntries(typeCheck(process.argv.slice(2)))));
