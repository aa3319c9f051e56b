import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { OptionsError } from '../errors.js';
import { checkDataDir } from '../scan/index.js';
import { closeApp, createApp } from './app.js';
import { errorBody } from './error-status.js';
import { createLogger } from './logging.js';
import { resolveServerOptions, type ServerOptions } from './options.js';

export interface RunningServer {
  /** Where it listens, e.g. `http://127.0.0.1:8080` (the real port when `port` was 0). */
  url: string;
  port: number;
  /**
   * Stops accepting connections, lets running downloads finish for up to `timeoutMs`
   * (default: the `shutdownTimeoutMs` option), then cuts the rest off; their backups are aborted.
   * Resolves when every connection is closed. Safe to call more than once.
   */
  close(timeoutMs?: number): Promise<void>;
}

/** `http://host:port`, with brackets around an IPv6 address. */
export const serverUrl = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

/**
 * Builds the app and listens. Refuses to start without a key unless `auth: { none: true }` is
 * given, and refuses that on a non-loopback host. Requests that arrive while closing get 503.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const resolved = resolveServerOptions(options);
  await checkDataDir(resolved.backup.dataDir);
  const logger = resolved.logger ?? createLogger();
  const app = createApp({ ...options, logger });
  let closing = false;
  const server = createAdaptorServer({
    fetch: (request, env) =>
      closing
        ? new Response(JSON.stringify(errorBody('ABORTED', 'the server is shutting down')), {
            status: 503,
            headers: { 'Content-Type': 'application/json', Connection: 'close', 'Retry-After': '5' },
          })
        : app.fetch(request, env),
    hostname: resolved.host,
  }) as Server;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new OptionsError(`cannot listen on ${serverUrl(resolved.host, resolved.port)} (options "host", "port"): ${error.code ?? error.message}`, { cause: error }));
    };
    server.once('error', onError);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = serverUrl(resolved.host, port);
  logger.info({ url, dataDir: resolved.backup.dataDir, auth: resolved.auth.kind, maxConcurrent: resolved.maxConcurrent }, 'listening');

  let closed: Promise<void> | undefined;
  const close = (timeoutMs = resolved.shutdownTimeoutMs): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      closing = true;
      logger.info({ timeoutMs }, 'shutting down: waiting for running downloads');
      server.close(() => resolve());
      // A finished download leaves a keep-alive connection behind: close those as they go idle.
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const deadline = setTimeout(() => {
        logger.warn({ timeoutMs }, 'shutdown timeout: cutting off running downloads');
        server.closeAllConnections();
      }, timeoutMs);
      server.closeIdleConnections();
      server.once('close', () => {
        clearInterval(sweep);
        clearTimeout(deadline);
        logger.info({}, 'stopped');
      });
    }).then(() => closeApp(app));
    return closed;
  };
  return { url, port, close };
}
