import { LogtoError } from '../errors.js';
import { bindAnswer, findAnswer, replyAnswer, type HostAnswer } from '../web/http.js';

/** The parts of Fastify's reply that Nest hands a guard on the Fastify platform. */
interface FastifyReplyLike {
  raw: { closed?: boolean; once(event: 'close', listener: () => void): unknown };
  statusCode: number;
  code(statusCode: number): FastifyReplyLike;
  header(key: string, value: string): FastifyReplyLike;
  redirect(url: string): FastifyReplyLike;
  send(payload?: unknown): FastifyReplyLike;
}

function isFastifyReply(value: unknown): value is FastifyReplyLike {
  const reply = value as Partial<FastifyReplyLike> | null;
  return typeof reply === 'object' && reply !== null && typeof reply.raw === 'object' && typeof reply.code === 'function' && typeof reply.header === 'function';
}


/**
 * How passport-logto answers this request: Node's response on the Express platform; on the
 * Fastify platform, Fastify's reply, bound to the request (and to Node's request behind it) so
 * that the strategy's own cookies go through the reply too.
 */
export function answerFor(req: object, res: unknown): HostAnswer {
  const found = findAnswer(req);
  if (found) return found;
  if (isFastifyReply(res)) {
    const answer = replyAnswer(res);
    // On Node's request when there is one: passport-logto finds it through `raw`, and Fastify's
    // request keeps the shape its decorators gave it.
    const raw = (req as { raw?: unknown }).raw;
    bindAnswer(typeof raw === 'object' && raw !== null ? raw : req, answer);
    return answer;
  }
  throw new LogtoError(
    'unsupported_host',
    'passport-logto/nestjs serves NestJS on its Express and Fastify platforms: this request has neither an Express response nor a Fastify reply.',
  );
}

/**
 * The response to hand Passport. Passport answers a redirect through Node's `statusCode`,
 * `setHeader` and `end`, which Fastify's reply does not have: on Fastify they are carried out
 * through the reply.
 */
export function passportResponse(res: unknown): unknown {
  if (!isFastifyReply(res)) return res;
  const reply = res;
  return {
    get statusCode(): number {
      return reply.statusCode;
    },
    set statusCode(code: number) {
      reply.code(code);
    },
    setHeader: (name: string, value: string) => void reply.header(name, value),
    end: (body?: unknown) => void reply.send(body),
  };
}

/** The parts of the Fastify instance behind a NestFastifyApplication that {@link logtoNestFastify} uses. */
interface NestFastifyInstanceLike {
  addHook(name: 'onRequest', hook: (request: object, reply: never, done: () => void) => void): unknown;
  hasReplyDecorator(name: string): boolean;
  decorateReply(name: string, value: unknown): unknown;
}

/**
 * A Fastify plugin, as `await app.register(plugin)` takes one. The instance is `unknown` so that
 * the plugin fits whichever copy of Fastify's types the app has (@nestjs/platform-fastify pins its
 * own Fastify).
 */
export type NestFastifyPlugin = (instance: unknown, options: unknown, done: (error?: Error) => void) => void;

/**
 * The Fastify plugin for NestJS on the Fastify platform: `await app.register(logtoNestFastify)`
 * before `app.listen()`. @nestjs/passport hands Passport Fastify's reply, and Passport answers a
 * redirect (the sign-in leg) through Node's `setHeader` and `end`: the plugin gives every reply
 * those two, carried out through the reply, so that any AuthGuard works (NestJS's documented
 * `super.logIn()` guard, a plain `AuthGuard`). It also lets passport-logto answer each request
 * through its reply (its cookies, and the report of a callback that never logs in).
 */
export const logtoNestFastify: NestFastifyPlugin = Object.assign(
  (fastify: unknown, _options: unknown, done: (error?: Error) => void): void => {
    const instance = fastify as NestFastifyInstanceLike;
    if (!instance.hasReplyDecorator('setHeader')) {
      instance.decorateReply('setHeader', function setHeader(this: FastifyReplyLike, name: string, value: string) {
        return this.header(name, value);
      });
    }
    if (!instance.hasReplyDecorator('end')) {
      instance.decorateReply('end', function end(this: FastifyReplyLike, body?: unknown) {
        this.send(body);
      });
    }
    instance.addHook('onRequest', (request, reply, next) => {
      answerFor(request, reply);
      next();
    });
    done();
  },
  // What fastify-plugin sets: the reply decorators and the hook reach the whole app.
  { [Symbol.for('skip-override')]: true },
);
