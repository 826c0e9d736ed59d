/** What a verify function calls when it is done: an error, or the user (false to refuse), with optional info for Passport. */
export type VerifyDone = (error: unknown, user?: object | false, info?: object | string) => void;
/** What a verify function may return instead of calling `done`. */
export type VerifyResult = object | false | undefined;

/** The user a verify function settled on, and the info it passed for Passport's messages. */
export interface Verified {
  user: object | false;
  info: object | string | undefined;
}

/**
 * Runs an app's verify function that either calls `done` or returns a promise. A function that
 * declares `done` (it has `doneIndex + 1` parameters) may call it later, even when it is async:
 * a promise that resolves to `undefined` then waits for `done`. The first answer wins; a throw or
 * a rejection is the app's own error and is passed on as it is. Without `takesDone`, a promise
 * decides and anything else waits for `done`.
 */
export function runVerify(invoke: (done: VerifyDone) => void | Promise<VerifyResult>, takesDone?: boolean): Promise<Verified> {
  return new Promise<Verified>((resolve, reject) => {
    let settled = false;
    const done: VerifyDone = (error, user, info) => {
      if (settled) return;
      settled = true;
      if (error) reject(error);
      else resolve({ user: user ?? false, info });
    };
    try {
      const returned = invoke(done);
      if (returned && typeof returned.then === 'function') {
        returned.then(
          (user) => {
            if (user === undefined && takesDone === true) return;
            done(null, user ?? false);
          },
          (error: unknown) => done(error ?? new Error('The verify function rejected.')),
        );
      } else if (takesDone === false) {
        done(null, (returned as VerifyResult) ?? false);
      }
    } catch (error) {
      done(error ?? new Error('The verify function threw.'));
    }
  });
}
