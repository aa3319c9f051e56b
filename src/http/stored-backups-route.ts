/**
 * Stored backups over HTTP: list, back up now, download, delete, restore from one. Same auth and
 * cross-site rules as every protected route; names are checked strictly before the store is asked.
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { StoreError } from '../errors.js';
import { checkBackupName } from '../store/names.js';
import { storedArchive } from '../store/open.js';
import { verifyArchive } from '../verify/index.js';
import type { AppEnv, RouteDeps } from './context.js';
import { errorResponse, PROTECTED_ERRORS, SECURITY } from './openapi.js';
import { RestoreQuery, RestoreResultSchema, restoreFromRequest } from './restore-route.js';
import type { StoredBackups } from './stored-backups.js';

const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}-backup-\\d{8}-\\d{6}\\.zip(\\.age)?$';

const NameParam = z.object({
  name: z.string().openapi({
    param: { name: 'name', in: 'path' },
    description: 'A backup name as listed: <prefix>-backup-<UTC yyyymmdd-hhmmss>.zip, or .zip.age when age-encrypted. Anything else is a 400 before the store is asked.',
    example: 'dbzip-backup-20260101-030000.zip',
    pattern: NAME_PATTERN,
  }),
});

const RunSchema = z
  .object({
    trigger: z.enum(['schedule', 'manual']),
    outcome: z.enum(['ok', 'failed']),
    name: z.string().nullable(),
    startedAt: z.string(),
    finishedAt: z.string(),
    durationMs: z.number(),
    bytes: z.number().int(),
    removed: z.array(z.string()).openapi({ description: 'Backups retention deleted after this run' }),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
  })
  .openapi('StoredBackupRun');

export const StoreStatusSchema = z
  .object({
    store: z.string().openapi({ description: 'Where backups go: a folder, or s3://bucket/prefix (endpoint). Never a credential.' }),
    kind: z.enum(['folder', 's3']),
    encrypted: z.boolean().openapi({ description: 'New backups are age-encrypted to the server\'s recipients (option encrypt, --encrypt-to) and named .zip.age' }),
    schedule: z.object({ cron: z.string(), timezone: z.string(), nextRun: z.string().nullable() }).nullable(),
    retention: z.object({ keep: z.number().int(), keepDays: z.number().int().nullable() }).nullable(),
    running: z.object({ trigger: z.enum(['schedule', 'manual']), startedAt: z.string() }).nullable(),
    lastRun: RunSchema.nullable(),
    lastSuccess: RunSchema.nullable(),
    lastFailure: RunSchema.nullable(),
    skipped: z.number().int().openapi({ description: 'Scheduled runs skipped (a run still going, or every backup slot taken) since the server started' }),
  })
  .openapi('StoredBackupsStatus');

const ListSchema = StoreStatusSchema.extend({
  backups: z.array(
    z.object({
      name: z.string(),
      size: z.number().int(),
      time: z.string().openapi({ description: 'The UTC time in the name (ISO 8601)' }),
      encrypted: z.boolean().openapi({ description: 'age-encrypted (.zip.age): verify and restore need the server\'s identity file' }),
    }),
  ),
}).openapi('StoredBackups');

const NOT_CONFIGURED = errorResponse('No store is configured (STORE_NOT_CONFIGURED): start with --store / --schedule, or pass store to createApp');
const STORE_ERRORS = { 502: errorResponse('The store failed or refused the credentials (STORE_FAILED, STORE_DENIED)') };
/** What every route on one named backup may answer besides its own success. */
const NAMED_ERRORS = {
  400: errorResponse('Not a backup name (INVALID_BACKUP_NAME)'),
  ...PROTECTED_ERRORS,
  404: errorResponse('No such backup (BACKUP_NOT_FOUND), or no store (STORE_NOT_CONFIGURED)'),
  ...STORE_ERRORS,
};

/** An age file is opaque bytes to anything but age: no browser or mail client should treat it as a zip. */
const contentType = (name: string) => (checkBackupName(name).encrypted ? 'application/octet-stream' : 'application/zip');

export function notConfigured(): StoreError {
  return new StoreError(
    'STORE_NOT_CONFIGURED',
    'no backup store is configured: start dbzip serve with --store <folder or s3://bucket/prefix> (and --schedule "0 3 * * *" for nightly backups), or pass store to createApp',
  );
}

export function registerStoredBackupsRoutes(app: OpenAPIHono<AppEnv>, deps: RouteDeps): void {
  const { protect, logger, options } = deps;
  const stored = (): StoredBackups => {
    if (deps.storedBackups === undefined) throw notConfigured();
    return deps.storedBackups;
  };
  // The name is checked strictly before the store (or its absence) is asked.
  const named = (param: { name: string }) => ({ name: checkBackupName(param.name).name, s: stored() });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/backups',
      summary: 'The stored backups, newest first, with the schedule and the last runs',
      tags: ['stored backups'],
      middleware: protect,
      security: SECURITY,
      responses: {
        200: { description: 'The store, its schedule and what it holds', content: { 'application/json': { schema: ListSchema } } },
        ...PROTECTED_ERRORS,
        404: NOT_CONFIGURED,
        ...STORE_ERRORS,
      },
    }),
    async (c) => {
      const s = stored();
      const backups = (await s.store.list()).map((b) => ({ name: b.name, size: b.size, time: b.time.toISOString(), encrypted: b.encrypted }));
      return c.json({ ...s.status(), backups }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/backups',
      summary: 'Back up into the store now',
      description: 'Starts a backup into the store and answers at once; GET /api/backups shows it running and then its outcome. Retention runs after it succeeds.',
      tags: ['stored backups'],
      middleware: protect,
      security: SECURITY,
      responses: {
        202: {
          description: 'Started',
          content: { 'application/json': { schema: z.object({ running: z.object({ trigger: z.literal('manual'), startedAt: z.string() }), store: z.string() }).openapi('StoredBackupStarted') } },
        },
        ...PROTECTED_ERRORS,
        404: NOT_CONFIGURED,
      },
    }),
    (c) => {
      const s = stored();
      // Throws BusyError (429) when a run is going or every backup slot is taken.
      void s.run('manual');
      logger.info({ audit: 'stored-backup-start', reqId: c.get('requestId'), client: c.get('client'), store: s.store.display }, 'stored backup started');
      const running = s.status().running ?? { trigger: 'manual' as const, startedAt: new Date().toISOString() };
      return c.json({ running: { trigger: 'manual' as const, startedAt: running.startedAt }, store: s.store.display }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/backups/{name}',
      summary: 'Download one stored backup',
      tags: ['stored backups'],
      middleware: protect,
      security: SECURITY,
      request: { params: NameParam },
      responses: {
        200: {
          description: 'The backup as stored, with its exact Content-Length; a .zip.age backup as the age file it is (application/octet-stream, X-Dbzip-Encryption: age)',
          headers: {
            'Content-Disposition': { schema: { type: 'string', example: 'attachment; filename="dbzip-backup-20260101-030000.zip"' } },
            'X-Dbzip-Encryption': { schema: { type: 'string', enum: ['age'] }, description: 'Present when the backup is age-encrypted' },
          },
          content: {
            'application/zip': { schema: z.string().openapi({ format: 'binary' }) },
            'application/octet-stream': { schema: z.string().openapi({ format: 'binary', description: 'An age-encrypted backup (.zip.age)' }) },
          },
        },
        ...NAMED_ERRORS,
      },
    }),
    async (c) => {
      const { name, s } = named(c.req.valid('param'));
      if (c.req.method === 'HEAD') {
        const { size } = await s.store.stat(name);
        return new Response(null, { status: 200, headers: { 'Content-Type': contentType(name), 'Content-Length': String(size) } });
      }
      const { stream, size } = await s.store.get(name, c.req.raw.signal);
      logger.info({ audit: 'stored-backup-download', reqId: c.get('requestId'), client: c.get('client'), name, size }, 'stored backup download');
      return new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, {
        status: 200,
        headers: {
          'Content-Type': contentType(name),
          'Content-Length': String(size),
          'Content-Disposition': `attachment; filename="${name}"`,
          'Cache-Control': 'no-store',
          ...(checkBackupName(name).encrypted ? { 'X-Dbzip-Encryption': 'age' } : {}),
        },
      });
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/backups/{name}',
      summary: 'Delete one stored backup',
      tags: ['stored backups'],
      middleware: protect,
      security: SECURITY,
      request: { params: NameParam },
      responses: {
        200: { description: 'Deleted', content: { 'application/json': { schema: z.object({ deleted: z.string() }).openapi('StoredBackupDeleted') } } },
        ...NAMED_ERRORS,
      },
    }),
    async (c) => {
      const { name, s } = named(c.req.valid('param'));
      await s.store.delete(name);
      logger.info({ audit: 'stored-backup-delete', reqId: c.get('requestId'), client: c.get('client'), name, store: s.store.display }, 'stored backup deleted');
      return c.json({ deleted: name }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/backups/{name}/verify',
      summary: 'Verify one stored backup in place',
      description:
        'Reads the zip from the store with ranged requests (the central directory, then each entry) and checks every CRC, SHA-256 and ' +
        'PRAGMA integrity_check, as `dbzip verify` does; nothing is downloaded to disk. Problems are in the report, not an error status. ' +
        'A .zip.age backup is authenticated whole (one sequential read) and decrypted on the fly with the identities the server was configured with ' +
        '(`decrypt`, `--identity`); none opening it is a 422.',
      tags: ['stored backups'],
      middleware: protect,
      security: SECURITY,
      request: { params: NameParam },
      responses: {
        200: {
          description: 'The verification report',
          content: {
            'application/json': {
              schema: z
                .object({
                  name: z.string(),
                  ok: z.boolean(),
                  problems: z.array(z.string()),
                  appVersion: z.string().nullable(),
                  databases: z.array(z.object({ path: z.string(), bytes: z.number().int(), integrity: z.string() })),
                  assets: z.number().int(),
                  totalBytes: z.number().int(),
                })
                .openapi('StoredBackupVerified'),
            },
          },
        },
        ...NAMED_ERRORS,
        422: errorResponse('An age-encrypted backup the server has no identity for, that no configured identity opens, or that does not authenticate (DECRYPTION_FAILED); nothing changed'),
      },
    }),
    async (c) => {
      const { name, s } = named(c.req.valid('param'));
      // Same slot as a restore: integrity_check holds a database image in memory, one at a time.
      const release = deps.restoreSlots.acquire();
      try {
        // An encrypted backup is decrypted in place with the server's own identities, never a request's.
        const report = await verifyArchive(await storedArchive(s.store, name), { maxDatabaseBytes: options.backup.maxDatabaseBytes, ...(options.decrypt === undefined ? {} : { decrypt: options.decrypt }) });
        logger.info({ audit: 'stored-backup-verify', reqId: c.get('requestId'), client: c.get('client'), name, ok: report.ok, problems: report.problems.length }, 'stored backup verified');
        return c.json(
          {
            name,
            ok: report.ok,
            problems: report.problems,
            appVersion: report.appVersion,
            databases: report.databases.map(({ path: p, bytes, integrity }) => ({ path: p, bytes, integrity })),
            assets: report.assets.length,
            totalBytes: report.totalBytes,
          },
          200,
        );
      } finally {
        release();
      }
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/backups/{name}/restore',
      summary: 'Restore from a stored backup (verify everything, pre-restore backup, then apply)',
      description:
        'The same verification, modes, dry run and pre-restore backup as POST /api/restore, with the archive taken from the store: ' +
        'it is copied to a spool file in <data-dir>/.dbzip/ (removed when the restore ends) and nothing changes until it has verified. ' +
        'A .zip.age backup is spooled encrypted and opened with the identities the server was configured with (`decrypt`, `--identity`).',
      tags: ['stored backups', 'restore'],
      middleware: protect,
      security: SECURITY,
      request: { params: NameParam, query: RestoreQuery },
      responses: {
        200: { description: 'The restore report (or the plan, for a dry run)', content: { 'application/json': { schema: RestoreResultSchema } } },
        ...NAMED_ERRORS,
        400: errorResponse('Not a backup name, a bad query, or an archive that failed verification (ARCHIVE_INVALID, with every problem in `problems`)'),
        409: errorResponse('Refused (RESTORE_REFUSED): the version policy, an unsafe target, or offline mode while the databases are in use; nothing changed'),
        500: errorResponse('Applying failed part-way (RESTORE_FAILED): the message names what changed and the pre-restore backup that undoes it'),
        422: errorResponse('An age-encrypted backup the server has no identity for, that no configured identity opens, or that does not authenticate (DECRYPTION_FAILED); nothing changed'),
      },
    }),
    async (c) => {
      const { name, s } = named(c.req.valid('param'));
      const result = await restoreFromRequest(c, deps, c.req.valid('query'), {
        audit: { source: 'store', name },
        open: async (spool) => {
          const file = await spool();
          const { stream, size } = await s.store.get(name, c.req.raw.signal);
          await pipeline(stream, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
          return { archive: file, bytes: size };
        },
        // The spool holds the backup as stored: a .zip.age stays encrypted on disk and is opened with the server's identities.
        ...(options.decrypt === undefined ? {} : { decrypt: options.decrypt }),
      });
      return c.json(result, 200);
    },
  );
}
