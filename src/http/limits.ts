import type { MiddlewareHandler } from 'hono';
import { BusyError } from '../errors.js';
import type { AppEnv } from './context.js';
import type { RateLimitOption } from './options.js';

/** A release function runs once however often it is called, so every exit path may call it. */
export type Release = () => void;

/**
 * Counts running backups (or, with `what: 'restore'`, restores). A slot is taken before any work
 * starts (snapshots; for a restore, before the upload is read) and given back when the work ends in
 * any way (done, failed, client gone).
 */
export class BackupSlots {
  #running = 0;
  readonly #max: number;
  readonly #retryAfterSeconds: number;
  readonly #what: string;

  constructor(max: number, retryAfterSeconds: number, what: 'backup' | 'restore' = 'backup') {
    this.#max = max;
    this.#retryAfterSeconds = retryAfterSeconds;
    this.#what = what;
  }

  get running(): number {
    return this.#running;
  }

  /** Takes a slot or throws BusyError (429 with Retry-After). */
  acquire(): Release {
    if (this.#running >= this.#max) {
      const running = this.#max === 1 ? `a ${this.#what} is` : `${this.#max} ${this.#what}s are`;
      throw new BusyError(`${running} already running; try again later`, this.#retryAfterSeconds);
    }
    this.#running += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running -= 1;
    };
  }
}

/**
 * At most `max` requests per client within a sliding `windowMs`. It runs before authentication,
 * so it also slows down anyone guessing keys. Memory: one timestamp per request still in a window.
 */
export function rateLimit(limit: RateLimitOption, now: () => number = Date.now): MiddlewareHandler<AppEnv> {
  const hits = new Map<string, number[]>();
  let lastSweep = now();
  return async (c, next) => {
    const t = now();
    if (t - lastSweep > limit.windowMs) {
      // Forget clients that went quiet, so the map cannot grow without bound.
      for (const [client, times] of hits) if ((times.at(-1) ?? 0) <= t - limit.windowMs) hits.delete(client);
      lastSweep = t;
    }
    const key = c.get('client') ?? 'unknown';
    const times = (hits.get(key) ?? []).filter((time) => time > t - limit.windowMs);
    if (times.length >= limit.max) {
      hits.set(key, times);
      const retryAfter = Math.max(1, Math.ceil(((times[0] ?? t) + limit.windowMs - t) / 1000));
      throw new BusyError(`rate limit: at most ${limit.max} requests per ${limit.windowMs / 1000} s per client`, retryAfter);
    }
    times.push(t);
    hits.set(key, times);
    await next();
  };
}
