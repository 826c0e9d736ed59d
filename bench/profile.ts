/**
 * Reading a V8 CPU profile taken inside an app process under load (bench/server.ts,
 * 'profile-start'/'profile-stop'): CPU per request by package, lib/ being passport-logto's own
 * code, and the passport-logto functions whose calls cost the most, callees included. Shares of
 * CPU show where a difference in req/s comes from, which req/s alone cannot.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** passport-logto's own code: lib/, or dist/ where the build is loaded (bench/hosts.ts). */
const isOwnCode = (url: string): boolean => (url.includes('/lib/') || url.includes('/dist/')) && !url.includes('node_modules');

/** What a frame belongs to: passport-logto's lib/, a package, Node's own code, or V8 (GC, idle, native). */
function ownerOf(url: string, functionName: string): string {
  if (isOwnCode(url)) return 'passport-logto (lib/)';
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (match) return match[1] as string;
  if (url.startsWith('node:')) return 'Node.js';
  if (url === '') return functionName === '(idle)' ? '(idle)' : functionName === '(garbage collector)' ? '(GC)' : '(V8 and native)';
  return url.replace(/^file:\/\/.*\/(bench|test)\//, '$1/');
}

export interface Analysis {
  /** Microseconds of CPU per request by the package of the innermost frame (self time). */
  selfByOwner: Record<string, number>;
  /** Microseconds per request spent inside each lib/ function, callees included. */
  inclusiveByLibFunction: Record<string, number>;
  /** Microseconds per request with any lib/ frame on the stack. */
  underLib: number;
  busy: number;
}

export function analyse(profile: Profile, requests: number): Analysis {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfByOwner = new Map<string, number>();
  const inclusiveByLibFunction = new Map<string, number>();
  let underLib = 0;
  let busy = 0;
  const add = (map: Map<string, number>, key: string, value: number): void => {
    map.set(key, (map.get(key) ?? 0) + value);
  };
  for (let index = 0; index < profile.samples.length; index += 1) {
    // A sample's time is the gap to the next sample.
    const micros = profile.timeDeltas[index + 1] ?? 0;
    const leaf = byId.get(profile.samples[index] as number);
    if (!leaf) continue;
    const owner = ownerOf(leaf.callFrame.url, leaf.callFrame.functionName);
    add(selfByOwner, owner, micros);
    if (owner !== '(idle)') busy += micros;
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)?.callFrame;
      if (!frame || !isOwnCode(frame.url)) continue;
      // tsx's transform leaves no useful line numbers: file and function name (dist/'s named as lib/'s source).
      seen.add(`${frame.url.replace(/^.*\/(lib|dist)\//, 'lib/').replace(/\.js$/, '.ts')} ${frame.functionName || '(anonymous)'}`);
    }
    if (seen.size > 0) underLib += micros;
    for (const name of seen) add(inclusiveByLibFunction, name, micros);
  }
  const perRequest = (map: Map<string, number>): Record<string, number> => Object.fromEntries([...map].map(([key, value]) => [key, value / requests]));
  return { selfByOwner: perRequest(selfByOwner), inclusiveByLibFunction: perRequest(inclusiveByLibFunction), underLib: underLib / requests, busy: busy / requests };
}

