/**
 * Fault switches, and the record of what reached /oidc: every request is recorded (faulted ones
 * included), a path can be made to answer garbage, and successful token responses can be rewritten.
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Fault, RecordedRequest, TokenResponseTamper } from './index.js';

/** Flattens a query/form object into the RecordedRequest shapes. */
function flattenParams(source: Iterable<[string, unknown]>): { params: Record<string, string>; values: Record<string, string[]> } {
  const values: Record<string, string[]> = {};
  for (const [key, value] of source) {
    const list = Array.isArray(value) ? value.map(String) : [String(value)];
    (values[key] ??= []).push(...list);
  }
  const params = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.join(' ')]));
  return { params, values };
}

async function readRawBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

export interface Traffic {
  /** Every request that reached /oidc/*, in order. */
  requests: RecordedRequest[];
  /** Express middleware for /oidc: records the request, and answers it itself when its path is faulted. */
  recordAndFault(req: Request, res: Response, next: NextFunction): Promise<void>;
  /** Adds the form body oidc-provider parsed to the request's record, and returns that record. */
  recordBody(req: IncomingMessage, body: Record<string, unknown> | undefined): RecordedRequest | undefined;
  /** The token-response tamper switched on, if any. */
  tamper(): TokenResponseTamper | undefined;
  setTokenResponseTamper(fn: TokenResponseTamper | undefined): void;
  setFault(path: string, fault: Fault | undefined): void;
}

export function createTraffic(endpoint: string): Traffic {
  const requests: RecordedRequest[] = [];
  const requestRecords = new WeakMap<IncomingMessage, RecordedRequest>();
  const faults = new Map<string, Fault>();
  let tamper: TokenResponseTamper | undefined;

  return {
    requests,
    async recordAndFault(req, res, next) {
      const url = new URL(req.originalUrl, endpoint);
      const record: RecordedRequest = {
        method: req.method,
        path: url.pathname,
        ...flattenParams(url.searchParams.entries()),
        authorization: req.headers.authorization,
        at: Date.now(),
      };
      requests.push(record);
      requestRecords.set(req, record);

      const fault = faults.get(url.pathname);
      if (!fault) {
        next();
        return;
      }
      if (req.method === 'POST') {
        const flat = flattenParams(new URLSearchParams(await readRawBody(req)).entries());
        Object.assign(record.params, flat.params);
        Object.assign(record.values, flat.values);
      }
      res.status(fault.status).type(fault.contentType ?? 'application/json').send(fault.body);
    },
    recordBody(req, body) {
      const record = requestRecords.get(req);
      if (record && body) {
        const flat = flattenParams(Object.entries(body));
        Object.assign(record.params, flat.params);
        Object.assign(record.values, flat.values);
      }
      return record;
    },
    tamper: () => tamper,
    setTokenResponseTamper(fn) {
      tamper = fn;
    },
    setFault(path, fault) {
      if (fault) faults.set(path, fault);
      else faults.delete(path);
    },
  };
}
