import { toHttpException } from './errors.js';

export type Handler = (req: never, res: never, next: (error?: unknown) => void) => void;

/**
 * Runs one of the strategy's route handlers (written as connect middleware) inside a guard:
 * resolves when it hands the request on, rejects with the error it reports (as an HttpException
 * when it is a LogtoError), and stays pending when it answers the browser itself (a redirect),
 * as @nestjs/passport's AuthGuard does on a redirect: the route handler then never runs.
 */
export function runHandler(handler: Handler, req: unknown, res: unknown): Promise<true> {
  return new Promise<true>((resolve, reject) => {
    try {
      handler(req as never, res as never, (error?: unknown) => (error === undefined || error === null ? resolve(true) : reject(toHttpException(error))));
    } catch (error) {
      reject(toHttpException(error));
    }
  });
}
