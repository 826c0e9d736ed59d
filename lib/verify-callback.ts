import { LogtoError } from './errors.js';

// Express.User and Express.AuthInfo are declared (empty, for apps to fill) in host-types.ts.

/**
 * The user a verify function logs in: the app's `Express.User` once the app declares its fields
 * (`declare global { namespace Express { interface User { id: string } } }`), any object until then.
 */
export type LogtoAppUser = keyof Express.User extends never ? object : Express.User;

/** What `req.authInfo` gets after a sign-in: the app's `Express.AuthInfo` once declared, any object or string until then. */
export type LogtoAppAuthInfo = keyof Express.AuthInfo extends never ? object | string : Express.AuthInfo;

/**
 * What a verify function calls when it is done: an error, or the user with optional info for
 * `req.authInfo`, or `false` to refuse the user with optional info for Passport's failure message.
 */
export interface VerifyDone {
  (error: unknown, user?: LogtoAppUser, info?: LogtoAppAuthInfo): void;
  (error: unknown, user: false, info?: object | string): void;
}
/**
 * What a verify function may return instead of calling `done`. `void` lets an `async` function that
 * calls `done` later (and returns nothing) type-check.
 */
export type VerifyResult = LogtoAppUser | false | undefined | void;

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
    const finish = (error: unknown, user?: object | false, info?: object | string): void => {
      if (settled) return;
      settled = true;
      if (error) reject(error);
      else resolve({ user: user ?? false, info });
    };
    const done = finish as VerifyDone;
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
            finish(null, user ?? false);
          },
          (error: unknown) => fail(error, 'The verify function rejected.'),
        );
      } else if (takesDone === false) {
        finish(null, (returned as object | false | undefined) ?? false);
      }
    } catch (error) {
      fail(error, 'The verify function threw.');
    }
  });
}

/**
 * Checks a strategy's verify argument against its `passReqToCallback` option, for both strategies
 * alike: a verify function is optional, but `passReqToCallback` means nothing without one. One
 * that declares more parameters than the strategy passes (passport-oauth2's
 * `(accessToken, refreshToken, profile, done)`) would find no `done` at its place and fail at the
 * first sign-in: it is refused here, with the signatures that work. `maxParameters` counts `req`.
 */
export function checkVerifyArgument(verify: unknown, passReqToCallback: boolean, maxParameters = 2, signatures = '(context, done) or async (context) => user'): void {
  if (verify !== undefined && typeof verify !== 'function') {
    throw new LogtoError('invalid_config', 'passport-logto: the verify argument must be a function.');
  }
  const allowed = maxParameters + (passReqToCallback ? 1 : 0);
  if (typeof verify === 'function' && verify.length > allowed) {
    const written = passReqToCallback ? signatures.replaceAll('(', '(req, ') : signatures;
    throw new LogtoError(
      'invalid_config',
      `passport-logto: the verify function declares ${verify.length} parameters, but it is called with at most ${allowed}${passReqToCallback ? ' (with passReqToCallback)' : ''}: write it as ${written}. `
        + 'passport-logto keeps the tokens itself and does not pass them as arguments (passport-oauth2 style).',
    );
  }
  if (passReqToCallback && verify === undefined) {
    throw new LogtoError('invalid_config', 'passport-logto: option `passReqToCallback` needs a verify function.');
  }
}
