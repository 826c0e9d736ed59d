/**
 * A value kept on a request object for the rest of that request (the helper `logto.session()`
 * loaded, say), under a symbol of its own so that two strategies never share it. A property costs
 * less than a WeakMap keyed by request: every garbage collection must trace a WeakMap's entries
 * as ephemerons, and the request, with its entry, outlives the young generation under load.
 */
export class RequestSlot<T> {
  private readonly key: symbol;

  constructor(description: string) {
    this.key = Symbol(description);
  }

  get(req: object): T | undefined {
    return (req as Record<symbol, T | undefined>)[this.key];
  }

  set(req: object, value: T): void {
    (req as Record<symbol, T>)[this.key] = value;
  }
}
