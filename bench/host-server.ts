/**
 * One app of another host than Express (bench/host-apps.ts), in its own process, driven by
 * bench/hosts.ts over IPC (see protocol.ts). It listens first: the app needs its URL for the callback.
 */
import { answerCommands, awaitMajorGcs, collectAfter, counters, listen, startProfile, stopProfile } from './app-side.js';
import { buildHostApp, type HostApp, type StoreReads } from './host-apps.js';
import type { Command } from './protocol.js';

let built: HostApp | undefined;
const reads: StoreReads = { count: 0 };
const server = await listen(() => built?.handler);

const realNow = Date.now;

/**
 * From now on, Date.now advances `scale` times slower than the real clock (1: the real clock).
 * Under valgrind a process runs some 50 times slower than natively, so passport-logto's copy of a
 * record (fresh for 2 s) would serve that many times fewer requests; the parent slows this
 * process's clock by as much, so that each copy serves as many requests as it does natively.
 */
function scaleClock(scale: number): void {
  const realStart = realNow();
  const shownStart = Date.now();
  Date.now = scale === 1 ? realNow : () => shownStart + Math.floor((realNow() - realStart) / scale);
}

async function handle(command: Command): Promise<unknown> {
  switch (command.type) {
    case 'configure-host':
      built = await buildHostApp(command.config, server, reads);
      return null;
    case 'logged-in-user':
      return built?.loggedInUser() ?? null;
    case 'clock-scale':
      scaleClock(command.scale);
      return null;
    case 'collect-after':
      collectAfter(command.requests);
      return null;
    case 'counters':
      return { ...counters, storeReads: reads.count };
    case 'await-major-gcs':
      return { ...(await awaitMajorGcs(command.count)), storeReads: reads.count };
    case 'profile-start':
      return startProfile(command.intervalMicros);
    case 'profile-stop':
      return stopProfile();
    default:
      throw new Error(`bench/host-server.ts does not answer ${command.type}`);
  }
}

answerCommands(server, handle);
