// Run before the tests (npm pretest): stops at once, in one line, when a program they need is missing.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const onPath = (name) => (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, name)));
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = [];
if (!onPath('redis-server')) missing.push('redis-server (apt-get install redis-server, or brew install redis)');
if (!existsSync(chromium)) missing.push(`Chromium at ${chromium} (apt-get install chromium, or set CHROMIUM_PATH)`);
if (missing.length > 0) {
  console.error(`npm test needs ${missing.join(' and ')}.`);
  process.exit(1);
}
