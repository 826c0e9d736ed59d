/** What a verify function calls when it is done: an error, or the user (false to refuse). */
export type VerifyDone = (error: unknown, user?: object | false, info?: object) => void;
/** What a verify function may return instead of calling `done`. */
export type VerifyResult = object | false | undefined;

/**
 * Runs an app's verify function that either calls `done` or returns a promise, whichever it
 * does first; a throw or a rejection becomes a rejection, and a later second answer is ignored.
 */
export function runVerify(invoke: (done: VerifyDone) => void | Promise<VerifyResult>): Promise<object | false> {
  return new Promise<object | false>((resolve, reject) => {
    let settled = false;
    const done: VerifyDone = (error, user) => {
      if (settled) return;
      settled = true;
      if (error) reject(error);
      else resolve(user ?? false);
    };
    try {
      const returned = invoke(done);
      if (returned && typeof returned.then === 'function') {
        returned.then((user) => done(null, user ?? false), (error: unknown) => done(error ?? new Error('The verify function rejected.')));
      }
    } catch (error) {
      done(error ?? new Error('The verify function threw.'));
    }
  });
}
