/**
 * A value kept on a request object for the rest of that request (the helper `logto.session()`
 * loaded, say), under a symbol of its own so that two strategies never share it. Cheaper, as
 * counted by bench/instructions.ts, than a WeakMap keyed by request, whose entries the garbage
 * collector keeps as ephemerons; still not free, since Express gives each request a hidden class
 * of its own and every property added to it builds another (bench/RESULTS.md, section 7b).
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
