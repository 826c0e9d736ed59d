import { HttpException } from '@nestjs/common';
import { LogtoError } from '../errors.js';

/** The body of the HttpException that a LogtoError becomes: Nest's usual shape, plus the error's code. */
export interface LogtoHttpExceptionBody {
  statusCode: number;
  /** The LogtoError's code (`authorization_failed`, `invalid_state`, `provider_unreachable`, ...). */
  error: string;
  message: string;
}

/**
 * Turns a LogtoError into an HttpException with the error's HTTP status, so that Nest's exception
 * filters (the built-in one and `@Catch(HttpException)` filters) answer 400/401/403/503 rather
 * than 500. The LogtoError stays as the exception's `cause`. Only what the request caused shows
 * its message; for the rest (a store or Logto being down, a setup mistake) the client gets a
 * generic text and the message stays in the cause, for logs. Anything else is returned as it is.
 */
export function toHttpException(error: unknown): unknown {
  if (!(error instanceof LogtoError)) return error;
  const statusCode = error.httpStatus;
  const body: LogtoHttpExceptionBody = {
    statusCode,
    error: error.code,
    message: error.expose ? error.message : statusCode === 503 ? 'Signing in is not possible right now; try again in a moment.' : 'Internal server error',
  };
  return new HttpException(body, statusCode, { cause: error });
}
