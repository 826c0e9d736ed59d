import { IncomingMessage } from 'node:http';
import type { LogtoClient } from './client.js';
import { RequestSlot } from './request-slot.js';

/** The helper the route guard admitted a request with: what `req.logto` reads on Express. */
const admitted = new RequestSlot<LogtoClient | undefined>('passport-logto: req.logto');

/** The request prototype last seen to have the `logto` accessor (Express's, one per app). */
let knownPrototype: object | undefined;

/**
 * Gives `req.logto` the route guard's helper. On Express, `logto` is an accessor that Express's
 * request prototype gets once, reading a slot in `res.locals` (see RequestSlot), rather than a
 * property added to each request: every request there has a hidden class of its own, and adding
 * a property to it costs as much as the rest of the guard (bench/RESULTS.md, section 7b). A
 * request that is not Express's, or whose prototype has someone else's `logto` (another copy of
 * passport-logto, loaded through both `import` and `require`), gets a plain assignment.
 */
export function setRequestLogto(req: object, client: LogtoClient): void {
  const prototype = Object.getPrototypeOf(req) as object | null;
  if (prototype !== null && (prototype === knownPrototype || defineAccessor(prototype))) {
    knownPrototype = prototype;
    admitted.set(req, client);
    return;
  }
  (req as { logto?: LogtoClient }).logto = client;
}

/**
 * Defines the accessor on the base of Express's request prototypes (the one just above Node's
 * `IncomingMessage.prototype`, which every app's and sub-app's request prototype inherits), once.
 * False when `req` is no Express request (its prototype chain has no such base) or that base
 * already has a `logto` of another's: then the guard assigns `req.logto`, as before.
 */
function defineAccessor(prototype: object): boolean {
  let base: object | null = prototype;
  while (base !== null && Object.getPrototypeOf(base) !== IncomingMessage.prototype) base = Object.getPrototypeOf(base) as object | null;
  if (base === null) return false;
  const existing = Object.getOwnPropertyDescriptor(base, 'logto');
  if (existing) return existing.get === readLogto;
  if (Object.getOwnPropertyDescriptor(IncomingMessage.prototype, 'logto')) return false;
  Object.defineProperty(base, 'logto', { get: readLogto, set: writeLogto, configurable: true, enumerable: false });
  return true;
}

function readLogto(this: object): LogtoClient | undefined {
  return admitted.get(this);
}

/** An app's own `req.logto = ...` keeps working, in the same slot. */
function writeLogto(this: object, value: LogtoClient | undefined): void {
  admitted.set(this, value);
}
