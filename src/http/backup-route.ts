import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { AGE_SUFFIX } from '../archive/age.js';
import { backupFileName } from '../archive/file-name.js';
import { createBackup, type Backup } from '../backup.js';
import { AbortedError, DbzipError } from '../errors.js';
import { nodeBindings, type AppEnv, type DownloadResult, type RouteDeps } from './context.js';
import { withRequestId } from './logging.js';
import { errorResponse, PROTECTED_ERRORS, SECURITY } from './openapi.js';
import { DOWNLOAD_COOKIE_MAX_AGE_SECONDS, DOWNLOAD_COOKIE_PREFIX, DOWNLOAD_TOKEN_PATTERN, isSecureRequest, mountPrefix, serializeCookie } from './session.js';

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
  dl: z
    .string()
    .regex(DOWNLOAD_TOKEN_PATTERN, 'dl must be 8 to 32 letters or digits')
    .optional()
    .openapi({
      description: `The page's download token: a successful answer sets the cookie ${DOWNLOAD_COOKIE_PREFIX}<dl>=1 (not HttpOnly, ${DOWNLOAD_COOKIE_MAX_AGE_SECONDS} s) so the page can tell the download started`,
      example: 'k3J9xQ2mP7aZ',
    }),
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
          'X-Dbzip-Encryption': {
            schema: { type: 'string', enum: ['age'] },
            description: 'Present when the server encrypts backups (option encrypt): the body is an age file (Content-Type application/octet-stream, name .zip.age); Content-Length stays exact',
          },
          'Set-Cookie': { schema: { type: 'string' }, description: 'With ?dl=<token> only: dbzip_dl_<token>=1, for the page (SameSite=Strict, Path = the mount prefix)' },
        },
        content: {
          'application/zip': { schema: z.string().openapi({ format: 'binary' }) },
          'application/octet-stream': { schema: z.string().openapi({ format: 'binary', description: 'The age-encrypted zip, when the server encrypts' }) },
        },
      },
      400: errorResponse('Bad query parameter or unknown database'),
      ...PROTECTED_ERRORS,
      500: errorResponse('A snapshot failed before the first byte'),
      503: errorResponse('The data directory is missing or unreadable'),
      507: errorResponse('A database is larger than the server\'s memory budget'),
    },
  });

type BodyOutcome = 'produced' | 'aborted' | 'stalled' | 'failed';

/** Largest piece handed to the socket at once: 64 KiB, about 6 s at 10 kB/s. */
const SLICE = 64 * 1024;

interface BodyOptions {
  /** Cuts the connection quietly (Node); without it the stream errors, which makes any adapter abort the transfer. */
  cut: (() => void) | undefined;
  /** How long the client may take to accept one slice before the download is cut off; 0: forever. */
  stallTimeoutMs: number;
  /** Bytes handed out so far, after each slice (the page's progress). */
  onSent?(bytes: number): void;
  onEnd(outcome: BodyOutcome, bytes: number, error?: unknown): void;
}

/**
 * The zip as a pull-based web stream: a chunk is produced only when the socket wants one, so memory
 * stays bounded. Not Hono's stream() helper: it swallows errors and ends the body normally, which
 * would pass a short zip off as a whole one. Here a failure cuts the connection (no final chunk).
 */
function downloadBody(backup: Backup, options: BodyOptions): ReadableStream<Uint8Array> {
  const chunks = backup.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let bytes = 0;
  let rest: Buffer = Buffer.alloc(0);
  let ended = false;
  let waitingSince: number | undefined;
  let stallTimer: NodeJS.Timeout | undefined;
  const end = (outcome: BodyOutcome, error?: unknown): boolean => {
    if (ended) return false;
    ended = true;
    clearInterval(stallTimer);
    options.onEnd(outcome, bytes, error);
    return true;
  };
  const cut = (controller: ReadableStreamDefaultController<Uint8Array>, error: unknown) => {
    if (options.cut !== undefined) options.cut();
    else controller.error(error);
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (options.stallTimeoutMs === 0) return;
        // A client that stops reading would hold a backup slot, an image in memory and (pinned) a read
        // transaction that keeps SQLite from checkpointing its WAL. Time spent producing does not count.
        stallTimer = setInterval(() => {
          if (waitingSince === undefined || Date.now() - waitingSince < options.stallTimeoutMs) return;
          const error = new AbortedError(`the client read nothing for ${options.stallTimeoutMs} ms`);
          if (!end('stalled', error)) return;
          backup.abort(error);
          cut(controller, error);
        }, Math.min(1_000, Math.max(10, options.stallTimeoutMs / 4)));
        stallTimer.unref();
      },
      async pull(controller) {
        waitingSince = undefined;
        if (rest.length === 0) {
          let step: IteratorResult<Buffer>;
          try {
            step = await chunks.next();
          } catch (error) {
            if (end('failed', error)) cut(controller, error);
            return;
          }
          if (ended) return;
          if (step.done === true) {
            end('produced');
            controller.close();
            return;
          }
          rest = step.value;
        }
        // Handed out in views of at most SLICE bytes, so a slow client still asks for more well within the stall timeout.
        const slice = rest.subarray(0, SLICE);
        rest = rest.subarray(slice.length);
        bytes += slice.length;
        controller.enqueue(slice);
        options.onSent?.(bytes);
        waitingSince = Date.now();
      },
      cancel() {
        // The client went away (or the server cut it off): stop snapshotting, close the worker and its handles.
        if (end('aborted')) backup.abort(new AbortedError('the client went away'));
      },
    },
    { highWaterMark: 0 },
  );
}

/** Calls back once the Node response is closed, with whether all of it was handed to the OS. */
function whenDelivered(outgoing: NonNullable<ReturnType<typeof nodeBindings>['outgoing']>, callback: (delivered: boolean) => void): void {
  if (outgoing.destroyed === true) callback(outgoing.writableFinished === true);
  else outgoing.once('close', () => callback(outgoing.writableFinished === true));
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
    const tracked = query.dl === undefined ? undefined : deps.downloads.track(query.dl, backup);
    let resolve!: (result: DownloadResult) => void;
    const download = new Promise<DownloadResult>((r) => {
      resolve = r;
    });
    const finish = (outcome: DownloadResult['outcome'], bytes: number, code?: string) => {
      tracked?.end(outcome);
      audit({ outcome, bytes, size: backup.size, databases, compressionLevel: query.level ?? options.backup.level, durationMs: Date.now() - started.getTime(), ...(code === undefined ? {} : { code }) });
      resolve({ outcome, bytes, databases: databases.length });
    };
    const outgoing = nodeBindings(c).outgoing;
    const body = downloadBody(backup, {
      cut: outgoing === undefined ? undefined : () => outgoing.destroy(),
      stallTimeoutMs: options.stallTimeoutMs,
      ...(tracked === undefined ? {} : { onSent: tracked.sent }),
      onEnd: (outcome, bytes, error) => {
        // The backup's work is over: its slot is free even while the last bytes are still on their way.
        release?.();
        const code = error instanceof DbzipError ? error.code : undefined;
        if (outcome === 'failed') logger.error({ reqId, code, err: error instanceof Error ? error.message : String(error), bytes }, 'backup failed after the first byte; connection cut');
        if (outcome === 'stalled') logger.warn({ reqId, bytes, stallTimeoutMs: options.stallTimeoutMs }, 'client stopped reading; download cut off');
        if (outcome !== 'produced') return finish(outcome, bytes, code);
        // Produced in full is not delivered: on Node, wait for the response to flush (or the client to drop it).
        if (outgoing === undefined) finish('ok', bytes);
        else whenDelivered(outgoing, (delivered) => finish(delivered ? 'ok' : 'aborted', bytes));
      },
    });
    c.set('download', download);
    // Encrypted (a server setting, never the request's), the body is an age file: not a zip to any client.
    const headers: Record<string, string> = {
      'Content-Type': backup.encrypted ? 'application/octet-stream' : 'application/zip',
      'Content-Disposition': `attachment; filename="${backupFileName(options.filePrefix, started)}${backup.encrypted ? AGE_SUFFIX : ''}"`,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    };
    if (backup.encrypted) headers['X-Dbzip-Encryption'] = 'age';
    if (backup.size !== null) headers['Content-Length'] = String(backup.size);
    else headers['X-Dbzip-Length'] = 'unknown';
    if (query.dl !== undefined) {
      // Path = the mount prefix: the page there reads it; the host's other paths never see it.
      headers['Set-Cookie'] = serializeCookie(`${DOWNLOAD_COOKIE_PREFIX}${query.dl}`, '1', {
        path: mountPrefix(c, '/api/backup'),
        maxAgeSeconds: DOWNLOAD_COOKIE_MAX_AGE_SECONDS,
        httpOnly: false,
        secure: isSecureRequest(c, options.trustProxy),
      });
    }
    return new Response(body, { status: 200, headers });
  });
}
