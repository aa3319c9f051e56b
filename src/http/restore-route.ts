/**
 * POST /api/restore: the archive arrives as the raw request body and is streamed to a spool file in
 * `<dataDir>/.dbzip/` (never memory, never /tmp), counted against `maxUploadBytes`; then `restore()`
 * verifies everything, takes the pre-restore backup and applies it. The spool is removed whatever
 * the outcome. One restore (dry runs included) at a time per app.
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { ArchiveError, DbzipError, OptionsError, PayloadTooLargeError } from '../errors.js';
import { checkDataDir } from '../scan/index.js';
import { createSpool, restore, type RestoreOptions, type RestoreReport } from '../restore/index.js';
import type { AppEnv, RouteDeps } from './context.js';
import { withRequestId } from './logging.js';
import { errorResponse, PROTECTED_ERRORS, SECURITY } from './openapi.js';
import { formatBytes } from '../format.js';

/** Content types taken as a zip. No type at all is accepted too (a bare `curl --data-binary` with `-H 'Content-Type:'`). */
const ZIP_TYPES = ['application/zip', 'application/octet-stream', 'application/x-zip-compressed', 'application/x-zip'];

/** 8589934592 bytes (8.0 GiB) */
const formatUploadLimit = (bytes: number): string => `${bytes} bytes (${formatBytes(bytes)})`;

const flag = (description: string) =>
  z
    .enum(['0', '1', 'true', 'false'])
    .transform((v) => v === '1' || v === 'true')
    .optional()
    .openapi({ description: `${description} \`1\`/\`true\` or \`0\`/\`false\`; default off.`, example: '1' });

export const RestoreQuery = z.strictObject({
  mode: z
    .enum(['online', 'offline'])
    .optional()
    .openapi({ description: 'online (default): databases rewritten in place through SQLite while the app runs. offline: files renamed into place; the app must be stopped.' }),
  dryRun: flag('Verify and plan only: nothing is changed and no pre-restore backup is written.'),
  exact: flag('Also remove databases and assets the archive does not hold (only files a backup would archive).'),
  force: flag('Allow an archive from a newer application version, and replacing files the pre-restore backup could not capture.'),
});

const PlanAction = z.enum(['added', 'replaced', 'unchanged', 'removed', 'kept']);

export const RestoreResultSchema = z
  .object({
    applied: z.boolean().openapi({ description: 'True when the data directory was changed (never in a dry run, nor when nothing differed)' }),
    dryRun: z.boolean(),
    mode: z.enum(['online', 'offline']),
    exact: z.boolean(),
    force: z.boolean(),
    uploadBytes: z.number().int().openapi({ description: 'Size of the uploaded archive' }),
    verify: z.object({
      ok: z.boolean(),
      appVersion: z.string().nullable().openapi({ description: "The archive's VERSION" }),
      databases: z.array(z.object({ path: z.string(), bytes: z.number().int(), integrity: z.string().openapi({ example: 'ok' }) })),
      assets: z.number().int().openapi({ description: 'Asset files in the archive' }),
      totalBytes: z.number().int().openapi({ description: 'Uncompressed bytes of every entry' }),
    }),
    version: z.object({
      archive: z.string(),
      current: z.string().nullable(),
      currentSource: z.enum(['option', 'data-dir', 'none']),
      comparison: z.enum(['older', 'same', 'newer', 'incomparable', 'no-current']),
      allowed: z.boolean(),
      forced: z.boolean(),
      reason: z.string(),
    }),
    plan: z.object({
      items: z.array(
        z.object({
          kind: z.enum(['database', 'asset', 'version']),
          path: z.string().openapi({ description: 'Relative to the data directory, /-separated', example: 'app.db' }),
          action: PlanAction,
          bytes: z.number().int().openapi({ description: 'Size after the restore (added, replaced, unchanged) or now (removed, kept)' }),
          uncaptured: z.boolean().optional().openapi({ description: 'Exists now but the pre-restore backup could not capture it' }),
        }),
      ),
      summary: z.object({ added: z.number().int(), replaced: z.number().int(), unchanged: z.number().int(), removed: z.number().int(), kept: z.number().int() }),
    }),
    preRestore: z
      .string()
      .nullable()
      .openapi({ description: 'The undo archive, relative to the data directory; null in a dry run or when nothing changed', example: '.dbzip/pre-restore-20260101-120000.zip' }),
    prunedPreRestore: z.array(z.string()).openapi({ description: 'Older pre-restore backups removed (keepPreRestore), relative to the data directory' }),
    removedLeftovers: z.array(z.string()).openapi({ description: "Staged files of an earlier, interrupted restore that were removed" }),
    notes: z.array(z.string()),
    durationMs: z.number(),
  })
  .openapi('RestoreResult');

export type RestoreResult = z.infer<typeof RestoreResultSchema>;

const restoreRoute = (middleware: MiddlewareHandler[]) =>
  createRoute({
    method: 'post',
    path: '/api/restore',
    summary: 'Restore a dbzip archive sent as the request body (verify everything, pre-restore backup, then apply)',
    description:
      'Send the zip as the raw body (Content-Type application/zip or application/octet-stream; multipart forms are refused). ' +
      'It is streamed to a spool file in <data-dir>/.dbzip/ and removed when the restore ends, whatever the outcome. ' +
      'Nothing in the data directory changes until the whole archive has verified. One restore (dry runs included) runs at a time per server; ' +
      'backups may run meanwhile (SQLite locking keeps each consistent). ' +
      'An age-encrypted archive (.zip.age) is decrypted with the identity file the server was configured with (`decrypt`, `--identity`); ' +
      'it is spooled encrypted, authenticated whole before anything changes, and refused with 422 (DECRYPTION_FAILED) when no configured identity opens it.',
    tags: ['restore'],
    middleware,
    security: SECURITY,
    request: {
      query: RestoreQuery,
      body: {
        required: true,
        description: 'The dbzip archive (zip, or age-encrypted zip), as produced by GET /api/backup',
        content: {
          'application/zip': { schema: z.string().openapi({ format: 'binary' }) },
          'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) },
        },
      },
    },
    responses: {
      200: { description: 'The restore report (or the plan, for a dry run)', content: { 'application/json': { schema: RestoreResultSchema } } },
      400: errorResponse('Bad query or Content-Type, an incomplete upload, or an archive that failed verification (ARCHIVE_INVALID, with every problem in `problems`)'),
      ...PROTECTED_ERRORS,
      409: errorResponse('Refused (RESTORE_REFUSED): the version policy, an unsafe target, or offline mode while the databases are in use; nothing changed'),
      413: errorResponse('The upload is larger than maxUploadBytes; nothing was kept'),
      422: errorResponse('An age-encrypted archive that the server has no identity for, that no configured identity opens, or that does not authenticate (tampered, truncated); nothing changed'),
      500: errorResponse('Applying failed part-way (RESTORE_FAILED): the message names what changed and the pre-restore backup that undoes it'),
      503: errorResponse('The data directory is missing or unreadable'),
      507: errorResponse("A database is larger than the server's memory budget"),
    },
  });

/**
 * Any answer but success may leave part of the upload unread: close the connection after it, so
 * the server does not read (or a keep-alive client keep sending) the rest of a large body.
 */
export const closeUnlessOk: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (c.res.status !== 200) c.res.headers.set('Connection', 'close');
};

function checkContentType(header: string | undefined): void {
  const type = (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === '' || ZIP_TYPES.includes(type)) return;
  const hint = type === 'multipart/form-data'
    ? 'multipart forms are not accepted: send the file itself as the body'
    : type === 'application/x-www-form-urlencoded'
      ? "curl --data-binary sends this type by default: add -H 'Content-Type: application/zip'"
      : `got ${type}`;
  throw new OptionsError(`the request body must be the zip itself, with Content-Type application/zip or application/octet-stream; ${hint}`);
}

/** Content-Length as a number, undefined when absent (chunked). */
function declaredLength(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  if (!/^\d{1,16}$/.test(header.trim())) throw new OptionsError(`invalid Content-Length: ${JSON.stringify(header)}`);
  return Number(header.trim());
}

const incomplete = (bytes: number, declared: number | undefined, why: string): ArchiveError =>
  new ArchiveError([`the upload is incomplete: ${why} after ${bytes} ${declared === undefined ? 'bytes' : `of ${declared} bytes`}; nothing was restored`]);

interface ReceiveOptions {
  maxBytes: number;
  declared: number | undefined;
  stallTimeoutMs: number;
}

/**
 * Streams the body into `file` (created with `wx`, 0600), counting bytes; returns the count. Over
 * the limit, short of Content-Length, broken off or stalled: the file is removed and it throws.
 */
async function receive(body: ReadableStream<Uint8Array>, file: string, o: ReceiveOptions): Promise<number> {
  let bytes = 0;
  let lastData = Date.now();
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      lastData = Date.now();
      if (bytes > o.maxBytes) callback(new PayloadTooLargeError(`the upload is larger than the limit of ${formatUploadLimit(o.maxBytes)} (option maxUploadBytes)`));
      else callback(null, chunk);
    },
  });
  // A client that stops sending would hold the one restore slot forever.
  const stall =
    o.stallTimeoutMs === 0
      ? undefined
      : setInterval(() => {
          if (Date.now() - lastData >= o.stallTimeoutMs) counter.destroy(incomplete(bytes, o.declared, `nothing arrived for ${o.stallTimeoutMs} ms`));
        }, Math.min(1_000, Math.max(10, o.stallTimeoutMs / 4)));
  stall?.unref();
  try {
    await pipeline(Readable.fromWeb(body as NodeReadableStream<Uint8Array>), counter, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    if (o.declared !== undefined && bytes !== o.declared) throw incomplete(bytes, o.declared, 'the body ended');
    return bytes;
  } catch (error) {
    await fs.rm(file, { force: true });
    if (error instanceof DbzipError) throw error;
    throw incomplete(bytes, o.declared, 'the client stopped sending');
  } finally {
    clearInterval(stall);
  }
}

/** The report without server paths: everything is named relative to the data directory. */
export function toBody(report: RestoreReport, force: boolean, uploadBytes: number): RestoreResult {
  const rel = (file: string) => path.relative(report.dataDir, file).split(path.sep).join('/');
  return {
    applied: report.applied,
    dryRun: report.dryRun,
    mode: report.mode,
    exact: report.exact,
    force,
    uploadBytes,
    verify: {
      ok: report.verify.ok,
      appVersion: report.verify.appVersion,
      databases: report.verify.databases.map(({ path: p, bytes, integrity }) => ({ path: p, bytes, integrity })),
      assets: report.verify.assets.length,
      totalBytes: report.verify.totalBytes,
    },
    version: report.version,
    plan: {
      items: report.plan.items.map(({ kind, path: p, action, bytes, uncaptured }) => ({ kind, path: p, action, bytes, ...(uncaptured === true ? { uncaptured } : {}) })),
      summary: report.plan.summary,
    },
    preRestore: report.preRestore === null ? null : rel(report.preRestore),
    prunedPreRestore: report.prunedPreRestore.map(rel),
    removedLeftovers: report.removedLeftovers.map(rel),
    notes: report.notes,
    durationMs: Math.round(report.durationMs),
  };
}

/** The app's own scan settings where it set them; otherwise restore() derives them from the archive. */
export function restoreScanOptions(options: RouteDeps['options']): Partial<RestoreOptions> {
  const given = options.backupOptions;
  return {
    ...(given.extensions === undefined ? {} : { extensions: given.extensions }),
    ...(given.recursive === undefined ? {} : { recursive: given.recursive }),
    ...(given.assets === undefined ? {} : { assets: given.assets }),
    ...(given.version === undefined ? {} : { appVersion: given.version }),
    busyTimeoutMs: options.backup.busyTimeoutMs,
    maxDatabaseBytes: options.backup.maxDatabaseBytes,
  };
}

/** Where the archive of one restore request comes from. */
export interface RestoreSource {
  /** Named in the audit line beside the request, e.g. `{ source: 'store', name }`. */
  audit: Record<string, unknown>;
  /** Runs before the restore slot is taken, so a bad request is turned away at once, not after queueing. */
  check?: () => Promise<void> | void;
  /**
   * Runs holding the slot: the archive to restore and its size. `spool()` checks the data directory and
   * makes a fresh file in `<dataDir>/.dbzip/`; a spooled archive is removed whatever the outcome.
   */
  open: (spool: () => Promise<string>) => Promise<{ archive: string; bytes: number }>;
  /** The server's identity, passed by POST /api/restore and the stored-backup restore: their archive may be age-encrypted. */
  decrypt?: RestoreOptions['decrypt'];
}

/**
 * One restore request, whatever the archive's source: one slot per app, the query as restore()
 * options, one audit line (ok, dry-run, rejected or failed), and the report relative to the data directory.
 */
export async function restoreFromRequest(c: Context<AppEnv>, deps: RouteDeps, query: z.infer<typeof RestoreQuery>, source: RestoreSource): Promise<RestoreResult> {
  const { options, logger } = deps;
  const dataDir = options.backup.dataDir;
  const reqId = c.get('requestId');
  const started = performance.now();
  const request = { mode: query.mode ?? 'online', dryRun: query.dryRun ?? false, exact: query.exact ?? false, force: query.force ?? false };
  let uploadBytes = 0;
  const audit = (fields: object) =>
    logger.info({ audit: 'restore', ...source.audit, reqId, client: c.get('client'), ...request, uploadBytes, durationMs: Math.round(performance.now() - started), ...fields }, 'restore');

  let release: (() => void) | undefined;
  let spool: string | undefined;
  const makeSpool = async (): Promise<string> => {
    await checkDataDir(dataDir);
    spool = await createSpool(dataDir);
    return spool;
  };
  try {
    await source.check?.();
    release = deps.restoreSlots.acquire();
    const { archive, bytes } = await source.open(makeSpool);
    uploadBytes = bytes;
    const report = await restore({
      ...restoreScanOptions(options),
      archive,
      dataDir,
      removeArchive: spool !== undefined,
      ...(source.decrypt === undefined ? {} : { decrypt: source.decrypt }),
      mode: request.mode,
      dryRun: request.dryRun,
      exact: request.exact,
      force: request.force,
      // The request is the confirmation; a person confirms on the page after a dry run.
      confirm: () => true,
      // A client that goes away cancels the restore until it starts changing live files.
      signal: c.req.raw.signal,
      logger: withRequestId(logger, reqId),
    });
    const result = toBody(report, request.force, uploadBytes);
    audit({ outcome: report.dryRun ? 'dry-run' : 'ok', applied: result.applied, preRestore: result.preRestore, summary: result.plan.summary, databases: result.verify.databases.length });
    return result;
  } catch (error) {
    const code = error instanceof DbzipError ? error.code : 'INTERNAL';
    const failed = code === 'RESTORE_FAILED' || code === 'INTERNAL';
    audit({ outcome: failed ? 'failed' : 'rejected', code, ...(error instanceof ArchiveError ? { problems: error.problems.length } : {}) });
    throw error;
  } finally {
    // restore() removes it itself (removeArchive); this covers a failure before restore() ran.
    if (spool !== undefined) await fs.rm(spool, { force: true }).catch(() => {});
    release?.();
  }
}

export function registerRestoreRoute(app: OpenAPIHono<AppEnv>, deps: RouteDeps): void {
  const { options } = deps;
  app.openapi(restoreRoute([closeUnlessOk, ...deps.protect]), async (c) => {
    const body = c.req.raw.body;
    let declared: number | undefined;
    const result = await restoreFromRequest(c, deps, c.req.valid('query'), {
      audit: {},
      check: () => {
        checkContentType(c.req.header('content-type'));
        declared = declaredLength(c.req.header('content-length'));
        if (declared !== undefined && declared > options.maxUploadBytes) {
          throw new PayloadTooLargeError(`the upload (${declared} bytes) is larger than the limit of ${formatUploadLimit(options.maxUploadBytes)} (option maxUploadBytes)`);
        }
        if (body === null || declared === 0) throw new ArchiveError(['the request has no body: send the zip itself as the request body']);
      },
      // The slot is taken before the upload is read, so a second restore is turned away at once, not after gigabytes.
      open: async (spool) => {
        const file = await spool();
        // check() refused a request without a body.
        return { archive: file, bytes: await receive(body as ReadableStream<Uint8Array>, file, { maxBytes: options.maxUploadBytes, declared, stallTimeoutMs: options.stallTimeoutMs }) };
      },
      // Only the server's own identity: a key uploaded with the request would travel and be handled beside the data it opens.
      ...(options.decrypt === undefined ? {} : { decrypt: options.decrypt }),
    });
    return c.json(result, 200);
  });
}
