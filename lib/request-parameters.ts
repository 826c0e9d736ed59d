import type { HostRequest as Request } from './host-types.js';

/**
 * The request's query, parsed from the raw URL rather than taken from Express's `req.query`,
 * whose parser turns `code[]=a` or `state[x]=b` into arrays and objects: here every value is a
 * string and a repeated parameter is seen as repeated.
 */
export function queryParameters(req: Request): URLSearchParams {
  const url = req.originalUrl || req.url || '';
  const index = url.indexOf('?');
  return new URLSearchParams(index === -1 ? '' : url.slice(index + 1));
}

/**
 * The values of `name` in the request's form body, as a body parser left them (an array for a
 * repeated field); none when the request has no parsed application/x-www-form-urlencoded body.
 */
export function formBodyValues(req: Request, name: string): unknown[] {
  if (!isFormBody(req)) return [];
  const value = (req.body as Record<string, unknown>)[name];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function isFormBody(req: Request): boolean {
  const contentType = req.headers['content-type'];
  return typeof contentType === 'string'
    && contentType.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded'
    && typeof req.body === 'object' && req.body !== null;
}

/**
 * The value of a parameter allowed at most once: undefined when absent, and null when it is
 * repeated, not a string, or refused by `accept`. A repeated parameter is refused rather than
 * one of its values picked, since two parts of a stack may pick different ones.
 */
export function singleValue(values: readonly unknown[], accept: (value: string) => boolean): string | undefined | null {
  if (values.length === 0) return undefined;
  const [value] = values;
  return values.length === 1 && typeof value === 'string' && accept(value) ? value : null;
}
