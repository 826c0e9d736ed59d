/**
 * A value kept for the rest of one request (the helper `logto.session()` loaded, say), under a
 * symbol of its own so that two strategies never share it.
 *
 * On Express it lives in `res.locals`, not on `req`: Express changes the prototype of every
 * request, which leaves V8 no shared hidden classes for it, so each property added to `req`
 * copies its ~40 property descriptors into a new hidden class and sends every later property
 * lookup on that request to V8's runtime (bench/RESULTS.md, section 7b). `res.locals` is a
 * dictionary made for each response, where a key costs a hash-table insert and nothing else;
 * a symbol key stays out of templates, which read locals by their string names. Elsewhere (a
 * Fastify request, Koa's view of a context) the value goes on the object itself, whose class is
 * shared. A WeakMap keyed by request costs the garbage collector more than either.
 */
export class RequestSlot<T> {
  private readonly key: symbol;

  constructor(description: string) {
    this.key = Symbol(description);
  }

  get(req: object): T | undefined {
    return (holderOf(req) as Record<symbol, T | undefined>)[this.key];
  }

  set(req: object, value: T): void {
    (holderOf(req) as Record<symbol, T>)[this.key] = value;
  }
}

/** Express's `res.locals` for this request, or the request object itself on other hosts. */
function holderOf(req: object): object {
  const locals = (req as { res?: { locals?: unknown } | null }).res?.locals;
  return typeof locals === 'object' && locals !== null ? locals : req;
}
