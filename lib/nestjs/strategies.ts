import passport from 'passport';
import { LogtoError } from '../errors.js';
import { LogtoBearerStrategy } from '../bearer/strategy.js';
import { LogtoStrategy } from '../web/strategy.js';

/** Passport's registry, which `PassportStrategy(LogtoStrategy, name)` fills (the default Passport instance). */
interface PassportRegistry {
  _strategy(name: string): unknown;
}

/** The LogtoStrategy registered under `name` by `PassportStrategy(LogtoStrategy, name)`. */
export function logtoStrategyNamed(name: string): LogtoStrategy {
  const strategy = registered(name);
  if (strategy instanceof LogtoStrategy) return strategy;
  throw missing(name, 'LogtoStrategy', strategy);
}

/** The LogtoBearerStrategy registered under `name`. */
export function bearerStrategyNamed(name: string): LogtoBearerStrategy {
  const strategy = registered(name);
  if (strategy instanceof LogtoBearerStrategy) return strategy;
  throw missing(name, 'LogtoBearerStrategy', strategy);
}

function registered(name: string): unknown {
  return (passport as unknown as PassportRegistry)._strategy(name);
}

function missing(name: string, kind: string, found: unknown): LogtoError {
  const what = found === undefined ? 'no strategy is registered under that name' : 'the strategy registered under that name is another kind';
  return new LogtoError(
    'invalid_config',
    `passport-logto/nestjs: the guard needs a ${kind} named "${name}", but ${what}. `
      + `Declare \`class ... extends PassportStrategy(${kind}, '${name}')\` as a provider of a module that the app imports, `
      + 'or pass the strategy name to the guard.',
  );
}
