import assert from 'node:assert/strict';
import { afterEach } from 'node:test';

export interface CrashWatch {
  /** Waits a turn for late rejections, then stops listening. */
  stop(): Promise<void>;
  assertNone(): void;
}

/**
 * Makes a crash or a forgotten promise fail the test that caused it instead of passing unnoticed:
 * records unhandled rejections and uncaught exceptions, and checks after each test of the file.
 */
export function watchForCrashes(): CrashWatch {
  const crashes: unknown[] = [];
  const record = (error: unknown): void => {
    crashes.push(error);
  };
  process.on('unhandledRejection', record);
  process.on('uncaughtException', record);
  afterEach(() => {
    assert.deepEqual(crashes.splice(0), [], 'no unhandled rejection or uncaught exception');
  });
  return {
    async stop() {
      await new Promise((resolve) => setImmediate(resolve));
      process.off('unhandledRejection', record);
      process.off('uncaughtException', record);
    },
    assertNone() {
      assert.deepEqual(crashes, [], 'no unhandled rejection or uncaught exception');
    },
  };
}
