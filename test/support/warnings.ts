/**
 * Warnings a test expects: captured instead of printed, so that `npm test` shows only the ones
 * nobody expected. Node prints a warning through its own 'warning' listener; while a capture runs,
 * warnings with the given codes go to the capture and every other one to Node's listeners as usual.
 */
export interface CapturedWarnings {
  readonly warnings: Array<Error & { code?: string }>;
  /** Waits a tick (process.emitWarning delivers on the next one) and gives the listeners back. */
  stop(): Promise<Array<Error & { code?: string }>>;
}

/** Every warning passport-logto emits (their codes start with PASSPORT_LOGTO_). */
export const passportLogtoWarnings = (warning: Error & { code?: string }): boolean => warning.code?.startsWith('PASSPORT_LOGTO_') === true;

export function captureWarnings(codes: readonly string[] | ((warning: Error & { code?: string }) => boolean)): CapturedWarnings {
  const original = process.listeners('warning');
  const warnings: Array<Error & { code?: string }> = [];
  const expected = typeof codes === 'function' ? codes : (warning: Error & { code?: string }) => warning.code !== undefined && codes.includes(warning.code);
  const capture = (warning: Error & { code?: string }): void => {
    if (expected(warning)) {
      warnings.push(warning);
      return;
    }
    for (const listener of original) listener(warning);
  };
  process.removeAllListeners('warning');
  process.on('warning', capture);
  return {
    warnings,
    async stop() {
      await new Promise((resolve) => setImmediate(resolve));
      if (!process.listeners('warning').includes(capture)) return warnings;
      process.off('warning', capture);
      for (const listener of original) process.on('warning', listener);
      return warnings;
    },
  };
}
