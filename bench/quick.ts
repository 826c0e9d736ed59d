/**
 * `npm run bench -- --quick`: the headline only, in a few minutes. passport-logto and bare Passport
 * answer the same body (bare Passport reports passport-logto's token length) on the cached-token
 * route and on a route that reads only `req.user`; each round loads the two apps back to back,
 * in alternating order, and the verdict is the median of the rounds' req/s ratios. The full run
 * (`npm run bench`) is for releases: it measures far more, far longer, and writes bench/RESULTS.md.
 */
import { API_RESOURCE, startProvider } from '../test/support/provider/index.js';
import { load, median, type LoadResult } from './load.js';
import { sessionCookie, signIn, startTarget, type Target, type TargetOptions } from './targets.js';

const rounds = Number(process.env.BENCH_RUNS ?? 6);
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const connections = 10;
const options: TargetOptions = { resource: API_RESOURCE, scopes: ['email', 'read:items'] };
const log = (message: string): void => {
  process.stderr.write(`${message}\n`);
};

interface Signed {
  target: Target;
  cookie: string;
}

async function signedIn(target: Target, provider: Parameters<typeof signIn>[1]): Promise<Signed & { tokenLength: number }> {
  const browser = await signIn(target, provider);
  const response = await browser.get(`${target.url}/api/token`);
  if (response.status !== 200) throw new Error(`${target.variant} /api/token: ${response.status} ${response.text.slice(0, 200)}`);
  return { target, cookie: sessionCookie(browser, target), tokenLength: (JSON.parse(response.text) as { tokenLength: number }).tokenLength };
}

function checked(result: LoadResult, what: string): LoadResult {
  if (result.failures > 0) throw new Error(`${what}: ${result.failures} failed requests`);
  return result;
}

const provider = await startProvider();
const started = performance.now();
const targets: Target[] = [];
try {
  const oursTarget = await startTarget(provider, 'passport-logto', options);
  targets.push(oursTarget);
  const ours = await signedIn(oursTarget, provider);
  const bareTarget = await startTarget(provider, 'bare', { ...options, tokenLength: ours.tokenLength });
  targets.push(bareTarget);
  const bare = await signedIn(bareTarget, provider);

  const lines = [
    '| route | passport-logto req/s | bare Passport req/s | ratio (median of rounds) | spread of the ratios |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const [path, label] of [['/api/token', 'cached access token'], ['/api/me', 'reads only req.user']] as const) {
    for (const side of [ours, bare]) {
      log(`warm-up ${side.target.variant} ${path}`);
      await load({ url: `${side.target.url}${path}`, cookie: side.cookie, seconds: 2, connections });
    }
    const ratios: number[] = [];
    const oursRps: number[] = [];
    const bareRps: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      log(`round ${round + 1}/${rounds} ${path}`);
      // Which app goes first alternates, so that neither always gets the warmer machine.
      const order = round % 2 === 0 ? [ours, bare] : [bare, ours];
      const measured = new Map<Signed, LoadResult>();
      for (const side of order) {
        measured.set(side, checked(await load({ url: `${side.target.url}${path}`, cookie: side.cookie, seconds, connections }), `${side.target.variant} ${path}`));
      }
      const mine = measured.get(ours)!.rps;
      const theirs = measured.get(bare)!.rps;
      oursRps.push(mine);
      bareRps.push(theirs);
      ratios.push(mine / theirs);
    }
    const spread = `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
    lines.push(`| \`${path}\` (${label}) | ${Math.round(median(oursRps))} | ${Math.round(median(bareRps))} | **${median(ratios).toFixed(2)}x** | ${spread} |`);
  }
  process.stdout.write(`# passport-logto against bare Passport, quick run

${lines.join('\n')}

Both apps answer the same body; ${rounds} rounds of ${seconds} s per app and route, ${connections} connections, on this machine
(${Math.round((performance.now() - started) / 1000)} s in all). A ratio of 1.00x is bare Passport's speed. The release figures,
with CPU per request, instructions and the other libraries, come from \`npm run bench\` (bench/RESULTS.md).
`);
} finally {
  await Promise.all(targets.map((target) => target.app.close()));
  await provider.close();
}
