/**
 * The one decision both ports make before anything else: does this
 * request's token allow `scope`, and as which tenant. Tokens (tokens.ts)
 * and the throttle of failures (throttle.ts) together.
 */
import { AuthThrottle, type ThrottleOptions } from './throttle';
import { Tokens, type Principal, type Scope } from './tokens';

export type AccessResult =
  | { ok: true; principal: Principal }
  /** Missing or unknown token. */
  | { ok: false; reason: 'unauthenticated'; message: string }
  /** A known token without the scope. */
  | { ok: false; reason: 'forbidden'; message: string }
  /** Too many failures from this address. */
  | { ok: false; reason: 'throttled'; message: string; retryAfterMs: number };

export class Access {
  readonly throttle: AuthThrottle;

  constructor(
    readonly tokens: Tokens,
    throttle: Partial<ThrottleOptions> = {},
  ) {
    this.throttle = new AuthThrottle(throttle);
  }

  get enabled(): boolean {
    return this.tokens.enabled;
  }

  check(address: string, token: string | undefined, scope: Scope): AccessResult {
    if (!this.tokens.enabled) return { ok: true, principal: this.tokens.check(undefined)! };
    const wait = this.throttle.blockedFor(address);
    if (wait > 0) {
      return { ok: false, reason: 'throttled', message: `too many failed authentications from this address; retry in ${Math.ceil(wait / 1000)} s`, retryAfterMs: wait };
    }
    const principal = this.tokens.check(token);
    if (!principal) {
      this.throttle.failed(address);
      return { ok: false, reason: 'unauthenticated', message: token ? 'unknown bearer token' : 'a bearer token is required' };
    }
    if (!principal.scopes.has(scope)) return { ok: false, reason: 'forbidden', message: `this token lacks the ${scope} scope` };
    return { ok: true, principal };
  }

  metrics(): Record<string, number> {
    return {
      auth_failures_total: this.throttle.counters.failures,
      auth_throttled_total: this.throttle.counters.blocked,
      auth_throttle_addresses: this.throttle.size,
      auth_throttle_evicted_total: this.throttle.counters.evicted,
    };
  }
}
