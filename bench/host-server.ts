/**
 * One app of another host than Express (bench/host-apps.ts), in its own process, driven by
 * bench/hosts.ts over IPC (see protocol.ts). It listens first: the app needs its URL for the callback.
 */
import { answerCommands, awaitMajorGcs, collectAfter, counters, listen, scaleClock, startProfile, stopProfile } from './app-side.js';
import { buildHostApp, type HostApp, type StoreReads } from './host-apps.js';
import type { Command } from './protocol.js';

let built: HostApp | undefined;
const reads: StoreReads = { count: 0 };
const server = await listen(() => built?.handler);

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
