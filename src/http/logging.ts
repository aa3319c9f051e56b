import { randomUUID } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { pino, type DestinationStream } from 'pino';
import type { Logger } from '../options.js';
import { nodeBindings, type AppEnv, type DownloadResult, type Outcome } from './context.js';

/**
 * A pino logger writing JSON lines to `destination` (default stdout). The CLI passes stderr or
 * stdout; tests pass an object that collects lines. Anything that might hold a key is redacted
 * as a second line of defence: dbzip never logs headers or query strings in the first place.
 */
export function createLogger(destination?: DestinationStream): Logger {
  const options = {
    base: { service: 'dbzip' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['apiKey', '*.apiKey', 'headers.authorization', 'headers["x-api-key"]'], censor: '[redacted]' },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** Adds the request id to every line the library logs for a request (skips, failures, restore steps). */
export const withRequestId = (logger: Logger, reqId: string): Logger => ({
  info: (obj, msg) => logger.info({ reqId, ...obj }, msg),
  warn: (obj, msg) => logger.warn({ reqId, ...obj }, msg),
  error: (obj, msg) => logger.error({ reqId, ...obj }, msg),
});

/**
 * The peer's address, or with `trustProxy` = n the address n entries from the right of
 * X-Forwarded-For + peer: each trusted proxy appends what it saw, so entries a client
 * forged sit further left and are never picked.
 */
export function clientAddress(c: Context, trustProxy: number): string | undefined {
  const peer = nodeBindings(c).incoming?.socket?.remoteAddress;
  if (trustProxy === 0) return peer;
  const forwarded = (c.req.header('x-forwarded-for') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const chain = peer === undefined ? forwarded : [...forwarded, peer];
  return chain[Math.max(0, chain.length - 1 - trustProxy)] ?? peer;
}

async function bodyBytes(res: Response): Promise<number> {
  const length = res.headers.get('content-length');
  if (length !== null) return Number(length);
  if (res.body === null) return 0;
  // Small JSON bodies only: a streamed download reports its own count.
  return (await res.clone().arrayBuffer()).byteLength;
}

const outcomeOf = (status: number): Outcome => (status >= 500 ? 'error' : status >= 400 ? 'rejected' : 'ok');

/**
 * First middleware: gives the request an id and a client address, then writes one JSON line
 * when the response is done. For a download that is when its body ends, not when the handler returns.
 */
export function requestLog(logger: Logger, trustProxy: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const requestId = randomUUID();
    c.set('requestId', requestId);
    c.set('client', clientAddress(c, trustProxy));
    await next();
    const line = {
      reqId: requestId,
      method: c.req.method,
      path: c.req.path, // never the query string
      status: c.res.status,
      client: c.get('client'),
    };
    const write = (result: { outcome: Outcome; bytes: number; databases?: number }) =>
      logger.info({ ...line, ...result, durationMs: Math.round(performance.now() - started) }, 'request');
    const download = c.get('download');
    if (download !== undefined) {
      void download.then((result: DownloadResult) => write(result));
      return;
    }
    const bytes = await bodyBytes(c.res).catch(() => 0);
    write({ outcome: c.req.raw.signal.aborted ? 'aborted' : outcomeOf(c.res.status), bytes });
  };
}
