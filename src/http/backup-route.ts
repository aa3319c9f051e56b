import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { backupFileName } from '../archive/file-name.js';
import { createBackup, type Backup } from '../backup.js';
import { AbortedError, DbzipError } from '../errors.js';
import type { Logger } from '../options.js';
import { nodeBindings, type AppEnv, type DownloadResult, type RouteDeps } from './context.js';
import { errorResponse, PROTECTED_ERRORS, SECURITY } from './openapi.js';

/** A repeated parameter arrives as an array, a single one as a string: accept both. */
const repeatable = z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(z.string().min(1)));

const BackupQuery = z.strictObject({
  level: z
    .string()
    .regex(/^[0-9]$/, 'level must be one digit from 0 (store) to 9')
    .transform(Number)
    .optional()
    .openapi({ description: '0 stores entries (exact Content-Length); 1-9 deflate (chunked). Default: the server\'s level.', example: '0' }),
  db: repeatable.optional().openapi({ description: 'Only these databases, by their path in the zip; repeatable. An unknown name is a 400.', example: ['app.db'] }),
});

const backupRoute = (protect: MiddlewareHandler[]) =>
  createRoute({
    method: 'get',
    path: '/api/backup',
    summary: 'Download a consistent zip of every database, the assets, VERSION and manifest.json',
    description:
      'The zip is streamed as it is produced. With a known size Content-Length is set; otherwise the body is chunked and X-Dbzip-Length is "unknown". ' +
      'If the backup fails after the first byte the connection is cut without a final chunk, so the client sees a failed download, never a short one.',
    tags: ['backup'],
    middleware: protect,
    security: SECURITY,
    request: { query: BackupQuery },
    responses: {
      200: {
        description: 'The backup zip',
        headers: {
          'Content-Disposition': { schema: { type: 'string', example: 'attachment; filename="dbzip-backup-20260101-120000.zip"' } },
          'X-Dbzip-Length': { schema: { type: 'string', enum: ['unknown'] }, description: 'Present when Content-Length cannot be known in advance' },
        },
        content: { 'application/zip': { schema: z.string().openapi({ format: 'binary' }) } },
      },
      400: errorResponse('Bad query parameter or unknown database'),
      ...PROTECTED_ERRORS,
      500: errorResponse('A snapshot failed before the first byte'),
      503: errorResponse('The data directory is missing or unreadable'),
      507: errorResponse('A database is larger than the server\'s memory budget'),
    },
  });

/** Adds the request id to every line createBackup logs (skips, failures). */
const withRequestId = (logger: Logger, reqId: string): Logger => ({
  info: (obj, msg) => logger.info({ reqId, ...obj }, msg),
  warn: (obj, msg) => logger.warn({ reqId, ...obj }, msg),
  error: (obj, msg) => logger.error({ reqId, ...obj }, msg),
});

/**
 * The zip as a pull-based web stream: a chunk is produced only when the socket wants one (memory
 * stays bounded). A failure cuts the connection: on Node the response is destroyed directly (quietly),
 * elsewhere the stream errors, which makes the adapter abort the transfer. Hono's stream() helper is
 * not used because it swallows errors and ends the body normally, which would pass a short zip for a whole one.
 */
function downloadBody(backup: Backup, cutConnection: (() => void) | undefined, onEnd: (outcome: DownloadResult['outcome'], bytes: number, error?: unknown) => void): ReadableStream<Uint8Array> {
  const chunks = backup.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let bytes = 0;
  let ended = false;
  const end = (outcome: DownloadResult['outcome'], error?: unknown): boolean => {
    if (ended) return false;
    ended = true;
    onEnd(outcome, bytes, error);
    return true;
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let step: IteratorResult<Buffer>;
        try {
          step = await chunks.next();
        } catch (error) {
          if (!end('failed', error)) return;
          if (cutConnection !== undefined) cutConnection();
          else controller.error(error);
          return;
        }
        if (ended) return;
        if (step.done === true) {
          end('ok');
          controller.close();
          return;
        }
        bytes += step.value.length;
        controller.enqueue(step.value);
      },
      cancel() {
        // The client went away (or the server cut it off): stop snapshotting, close the worker and its handles.
        if (end('aborted')) backup.abort(new AbortedError('the client went away'));
      },
    },
    { highWaterMark: 0 },
  );
}

export function registerBackupRoute(app: OpenAPIHono<AppEnv>, deps: RouteDeps): void {
  const { options, logger, slots } = deps;
  app.openapi(backupRoute(deps.protect), async (c) => {
    // Hono answers HEAD with a GET handler and drops the body unread, which would leave a backup running.
    if (c.req.method === 'HEAD') return new Response(null, { status: 405, headers: { Allow: 'GET' } });
    const query = c.req.valid('query');
    const reqId = c.get('requestId');
    const audit = (fields: object) => logger.info({ audit: 'backup-download', reqId, client: c.get('client'), ...fields }, 'backup download');
    let release: (() => void) | undefined;
    let backup: Backup;
    const started = new Date();
    try {
      // Taken before any snapshot work, so the next request is turned away at once.
      release = slots.acquire();
      backup = await createBackup({
        ...options.backupOptions,
        ...(query.db === undefined ? {} : { databases: query.db }),
        ...(query.level === undefined ? {} : { level: query.level }),
        // Before the response exists, a client that goes away cancels the scan and the first snapshot.
        signal: c.req.raw.signal,
        logger: withRequestId(logger, reqId),
      });
    } catch (error) {
      release?.();
      audit({ outcome: 'rejected', code: error instanceof DbzipError ? error.code : 'INTERNAL', databases: query.db ?? 'all' });
      throw error;
    }
    const databases = backup.plan.databases.map((db) => db.path);
    let resolve!: (result: DownloadResult) => void;
    const download = new Promise<DownloadResult>((r) => {
      resolve = r;
    });
    const outgoing = nodeBindings(c).outgoing;
    const body = downloadBody(backup, outgoing === undefined ? undefined : () => outgoing.destroy(), (outcome, bytes, error) => {
      release?.();
      const code = error instanceof DbzipError ? error.code : undefined;
      if (outcome === 'failed') logger.error({ reqId, code, err: error instanceof Error ? error.message : String(error), bytes }, 'backup failed after the first byte; connection cut');
      audit({ outcome, bytes, size: backup.size, databases, level: query.level ?? options.backup.level, durationMs: Date.now() - started.getTime(), ...(code === undefined ? {} : { code }) });
      resolve({ outcome, bytes, databases: databases.length });
    });
    c.set('download', download);
    const headers: Record<string, string> = {
      'Content-Type': 'application/zip',
      'Content-Disposition': `attachment; filename="${backupFileName(options.filePrefix, started)}"`,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    };
    if (backup.size !== null) headers['Content-Length'] = String(backup.size);
    else headers['X-Dbzip-Length'] = 'unknown';
    return new Response(body, { status: 200, headers });
  });
}
