// The runner moved to lib/verify-callback.ts, beside the options, since both strategies use it.
// sign-in-callback.ts still imports it from here; drop this file once that import points there.
export * from '../verify-callback.js';
