/**
 * `npm run example`: starts the example against the Logto tenant named by LOGTO_ENDPOINT,
 * LOGTO_APP_ID and LOGTO_APP_SECRET, or, without them, against the bundled Logto-compatible
 * provider with its demo account. See example/README.md.
 */
import { readConfig, startExample, type RunningExample } from './start.js';

let running: RunningExample;
try {
  running = await startExample(readConfig(process.env));
} catch (error) {
  console.error(`The example could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

const lines = ['passport-logto example'];
if (running.demoAccount) {
  lines.push(
    `  Logto:    bundled test provider at ${running.endpoint} (not a real Logto; set LOGTO_ENDPOINT to use yours)`,
    `  Sign in:  username ${running.demoAccount.username}, password ${running.demoAccount.password}`,
  );
} else {
  lines.push(
    `  Logto:    ${running.endpoint}`,
    `  In the Logto Console, the application needs the redirect URI ${running.url}/callback`,
    `  and the post sign-out redirect URI ${running.url}/`,
  );
}
lines.push(`  Open:     ${running.url}`, '  Stop:     Ctrl+C');
console.log(lines.join('\n'));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
