import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { inspect, type Inspection } from '../inspect.js';
import type { AppEnv, RouteDeps } from './context.js';
import { errorResponse, PROTECTED_ERRORS, SECURITY } from './openapi.js';

const InspectionSchema = z
  .object({
    version: z.string().openapi({ description: 'Text of the VERSION entry' }),
    versionSource: z.enum(['option', 'data-dir', 'dbzip']),
    databases: z.array(
      z.object({
        path: z.string().openapi({ example: 'app.db' }),
        bytes: z.number().int().openapi({ description: 'Snapshot size now: page count × page size, WAL content included' }),
        fileBytes: z.number().int().openapi({ description: 'Size of the main file on disk' }),
        journalMode: z.enum(['wal', 'rollback']),
        pageSize: z.number().int(),
        pageCount: z.number().int(),
        userVersion: z.number().int(),
        mtime: z.string().openapi({ format: 'date-time' }),
      }),
    ),
    assetFolders: z.array(z.string()),
    assets: z.array(z.object({ path: z.string(), bytes: z.number().int(), mtime: z.string().openapi({ format: 'date-time' }) })),
    skipped: z.array(z.object({ path: z.string(), code: z.string().openapi({ example: 'NOT_SQLITE' }), reason: z.string() })),
  })
  .openapi('Inspection');

type InspectionBody = z.infer<typeof InspectionSchema>;

/** Absolute server paths stay on the server: clients name databases by their path in the zip. */
function toBody(inspection: Inspection): InspectionBody {
  return {
    version: inspection.version,
    versionSource: inspection.versionSource,
    databases: inspection.databases.map(({ path, bytes, fileBytes, journalMode, pageSize, pageCount, userVersion, mtime }) => ({
      path,
      bytes,
      fileBytes,
      journalMode,
      pageSize,
      pageCount,
      userVersion,
      mtime: mtime.toISOString(),
    })),
    assetFolders: inspection.assetFolders,
    assets: inspection.assets.map(({ path, bytes, mtime }) => ({ path, bytes, mtime: mtime.toISOString() })),
    skipped: inspection.skipped.map(({ path, code, reason }) => ({ path, code, reason })),
  };
}

const databasesRoute = (deps: RouteDeps) =>
  createRoute({
    method: 'get',
    path: '/api/databases',
    summary: 'What a backup would contain now: databases with size and journal mode, assets, skipped files with reasons, version',
    tags: ['backup'],
    middleware: deps.protect,
    security: SECURITY,
    responses: {
      200: { description: 'The inspection', content: { 'application/json': { schema: InspectionSchema } } },
      ...PROTECTED_ERRORS,
      503: errorResponse('The data directory is missing or unreadable'),
    },
  });

export function registerDatabasesRoute(app: OpenAPIHono<AppEnv>, deps: RouteDeps): void {
  app.openapi(databasesRoute(deps), async (c) => {
    const inspection = await inspect({ ...deps.options.backupOptions, signal: c.req.raw.signal });
    return c.json(toBody(inspection), 200);
  });
}
