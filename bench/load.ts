/** The load generator (autocannon), kept to loopback, and the statistics the report uses. */
import { execFileSync } from 'node:child_process';
import autocannon from 'autocannon';

/** Load is only ever sent to this machine's own loopback servers. */
export function assertLoopback(url: string): void {
  const { hostname } = new URL(url);
  if (hostname !== '127.0.0.1') throw new Error(`refusing to send load to ${url}: only 127.0.0.1 is a target`);
}

export interface LoadResult {
  /** Mean requests per second over the run. */
  rps: number;
  /** Milliseconds. */
  p50: number;
  p99: number;
  requests: number;
  /** Answers other than 2xx, and connection errors or timeouts: any makes the run invalid. */
  failures: number;
}

export interface LoadOptions {
  url: string;
  cookie: string;
  seconds: number;
  connections: number;
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  assertLoopback(options.url);
  // autocannon's own histogram counts whole milliseconds; its response events carry fractions.
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.seconds,
        headers: { cookie: options.cookie, accept: 'application/json' },
      },
      (error, finished) => (error ? reject(error) : resolve(finished)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  return {
    rps: result.requests.total / result.duration,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    requests: result.requests.total,
    failures: result.non2xx + result.errors + result.timeouts,
  };
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Runs `count` tasks, `concurrency` at a time. */
export async function pool(count: number, concurrency: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const index = next;
        next += 1;
        await work(index);
      }
    }),
  );
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Pins a process (all its threads, GC helpers included) to one CPU with taskset, so that two apps
 * measured side by side share exactly one core and the load generator has the other. False when
 * taskset is missing or refuses. `cpus` is one CPU or a taskset list such as `0-1`.
 */
export function pinToCpu(pid: number | undefined, cpus: number | string): boolean {
  if (pid === undefined) return false;
  try {
    execFileSync('taskset', ['-apc', String(cpus), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
