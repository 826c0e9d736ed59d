import { LogtoError } from './errors.js';

/** What a verify function calls when it is done: an error, or the user (false to refuse), with optional info for Passport. */
export type VerifyDone = (error: unknown, user?: object | false, info?: object | string) => void;
/**
 * What a verify function may return instead of calling `done`. `void` lets an `async` function that
 * calls `done` later (and returns nothing) type-check.
 */
export type VerifyResult = object | false | undefined | void;

/** The user a verify function settled on, and the info it passed for Passport's messages. */
export interface Verified {
  user: object | false;
  info: object | string | undefined;
}

/**
 * Runs an app's verify function that either calls `done` or returns a promise. A function that
 * declares `done` (its `length` counts it) may call it later, even when it is async:
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
    // A throw or a rejection is an error whatever its value: `throw ''` must not read as a refusal.
    const fail = (error: unknown, fallback: string): void => {
      if (settled) return;
      settled = true;
      reject(error ?? new Error(fallback));
    };
    try {
      const returned = invoke(done);
      if (returned && typeof returned.then === 'function') {
        returned.then(
          (user) => {
            if (user === undefined && takesDone === true) return;
            done(null, user ?? false);
          },
          (error: unknown) => fail(error, 'The verify function rejected.'),
        );
      } else if (takesDone === false) {
        done(null, (returned as VerifyResult) ?? false);
      }
    } catch (error) {
      fail(error, 'The verify function threw.');
    }
  });
}

/**
 * Checks a strategy's verify argument against its `passReqToCallback` option, for both strategies
 * alike: a verify function is optional, but `passReqToCallback` means nothing without one.
 */
export function checkVerifyArgument(verify: unknown, passReqToCallback: boolean): void {
  if (verify !== undefined && typeof verify !== 'function') {
    throw new LogtoError('invalid_config', 'passport-logto: the verify argument must be a function.');
  }
  if (passReqToCallback && verify === undefined) {
    throw new LogtoError('invalid_config', 'passport-logto: option `passReqToCallback` needs a verify function.');
  }
}
