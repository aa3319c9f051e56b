/**
 * The pre-restore backups (`<dataDir>/.dbzip/pre-restore-*.zip`) over HTTP, so a restore can be
 * undone from the page: list them, download one, restore one (dry run first, as for an upload).
 * Names are matched against the one pattern restore() writes; nothing else in `.dbzip/` is reachable.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { listPreRestoreBackups, preRestorePath, PRE_RESTORE_NAME_PATTERN } from '../restore/index.js';
import type { AppEnv, RouteDeps } from './context.js';
import { errorResponse, PROTECTED_ERRORS, SECURITY } from './openapi.js';
import { closeUnlessOk, RestoreQuery, RestoreResultSchema, restoreFromRequest } from './restore-route.js';

const PreRestoreName = z
  .string()
  .regex(PRE_RESTORE_NAME_PATTERN, 'name must be pre-restore-<yyyymmdd-hhmmss>[-n].zip')
  .openapi({ param: { name: 'name', in: 'path' }, example: 'pre-restore-20260101-120000.zip' });

const PreRestoreSchema = z
  .object({
    name: z.string().openapi({ example: 'pre-restore-20260101-120000.zip' }),
    bytes: z.number().int(),
    createdAt: z.string().openapi({ description: 'When the restore that wrote it started (UTC, from the name)', example: '2026-01-01T12:00:00.000Z' }),
  })
  .openapi('PreRestoreBackup');

const listRoute = (protect: MiddlewareHandler[]) =>
  createRoute({
    method: 'get',
    path: '/api/pre-restore',
    summary: 'The pre-restore backups: the data directory as it was before each restore, newest first',
    description: 'Each undoes the restore that wrote it. restore() keeps the newest keepPreRestore (default 5).',
    tags: ['restore'],
    middleware: protect,
    security: SECURITY,
    responses: {
      200: { description: 'Newest first; empty when no restore ran yet', content: { 'application/json': { schema: z.object({ backups: z.array(PreRestoreSchema) }) } } },
      ...PROTECTED_ERRORS,
      503: errorResponse('The data directory is missing or unreadable'),
    },
  });

const downloadRoute = (protect: MiddlewareHandler[]) =>
  createRoute({
    method: 'get',
    path: '/api/pre-restore/{name}',
    summary: 'Download one pre-restore backup',
    tags: ['restore'],
    middleware: protect,
    security: SECURITY,
    request: { params: z.object({ name: PreRestoreName }) },
    responses: {
      200: { description: 'The zip, with Content-Length', content: { 'application/zip': { schema: z.string().openapi({ format: 'binary' }) } } },
      400: errorResponse('Not a pre-restore backup name'),
      ...PROTECTED_ERRORS,
      404: errorResponse('No such pre-restore backup (pruned, or never written)'),
    },
  });

const restoreFromRoute = (middleware: MiddlewareHandler[]) =>
  createRoute({
    method: 'post',
    path: '/api/pre-restore/{name}/restore',
    summary: 'Restore a pre-restore backup: undo the restore that wrote it (same checks, modes and dry run as POST /api/restore)',
    description:
      'No body. The archive is verified completely, the current state is saved as a new pre-restore backup, then the archive is applied. ' +
      'A restore of an older archive wrote its older VERSION, so undoing it usually needs force=1 (the version policy says why in a dry run).',
    tags: ['restore'],
    middleware,
    security: SECURITY,
    request: { params: z.object({ name: PreRestoreName }), query: RestoreQuery },
    responses: {
      200: { description: 'The restore report (or the plan, for a dry run); uploadBytes is the archive size', content: { 'application/json': { schema: RestoreResultSchema } } },
      400: errorResponse('Bad name or query, or an archive that failed verification (ARCHIVE_INVALID)'),
      ...PROTECTED_ERRORS,
      404: errorResponse('No such pre-restore backup'),
      409: errorResponse('Refused (RESTORE_REFUSED): the version policy, an unsafe target, or offline mode while the databases are in use; nothing changed'),
      500: errorResponse('Applying failed part-way (RESTORE_FAILED)'),
      503: errorResponse('The data directory is missing or unreadable'),
    },
  });

async function sizeOf(file: string, name: string): Promise<number> {
  const stat = await fs.lstat(file).catch(() => null);
  if (stat === null || !stat.isFile()) throw new HTTPException(404, { message: `no pre-restore backup named ${name} (restore() keeps the newest keepPreRestore)` });
  return stat.size;
}

export function registerPreRestoreRoutes(app: OpenAPIHono<AppEnv>, deps: RouteDeps): void {
  const dataDir = deps.options.backup.dataDir;

  app.openapi(listRoute(deps.protect), async (c) => {
    const backups = await listPreRestoreBackups(dataDir);
    return c.json({ backups: backups.map(({ name, bytes, createdAt }: { name: string; bytes: number; createdAt: Date }) => ({ name, bytes, createdAt: createdAt.toISOString() })) }, 200);
  });

  app.openapi(downloadRoute(deps.protect), async (c) => {
    const { name } = c.req.valid('param');
    const file = preRestorePath(dataDir, name);
    const bytes = await sizeOf(file, name);
    const body = Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
    return new Response(body, {
      status: 200,
      headers: { 'Content-Type': 'application/zip', 'Content-Length': String(bytes), 'Content-Disposition': `attachment; filename="${name}"` },
    });
  });

  app.openapi(restoreFromRoute([closeUnlessOk, ...deps.protect]), async (c) => {
    const { name } = c.req.valid('param');
    const file = preRestorePath(dataDir, name);
    let bytes = 0;
    // Restored in place: restore() only reads it, and writes the current state as a new pre-restore backup.
    const result = await restoreFromRequest(c, deps, c.req.valid('query'), {
      audit: { source: name },
      check: async () => {
        bytes = await sizeOf(file, name);
      },
      open: async () => ({ archive: file, bytes }),
    });
    return c.json(result, 200);
  });
}
