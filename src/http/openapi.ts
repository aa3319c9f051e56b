import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { DBZIP_VERSION } from '../version.js';
import type { AppEnv } from './context.js';

/** Names of the security schemes in the document; any one is accepted. */
export const SECURITY = [{ ApiKeyHeader: [] }, { BearerAuth: [] }, { SessionCookie: [] }];

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'UNAUTHORIZED' }),
      message: z.string(),
      problems: z.array(z.string()).optional().openapi({ description: 'ARCHIVE_INVALID only: every problem the archive failed verification with' }),
    }),
  })
  .openapi('Error');

export const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ErrorSchema } } });

/** Answers every protected route may give besides its own. */
export const PROTECTED_ERRORS = {
  401: errorResponse('Missing or wrong API key (WWW-Authenticate is set)'),
  403: errorResponse('No API key is configured on the server, or a browser session was used from another site'),
  429: errorResponse('Too many requests, backups or restores at once (Retry-After is set)'),
} as const;

const DOC_PATH = '/api/openapi.json';

const openApiRoute = (protect: MiddlewareHandler[]) =>
  createRoute({
    method: 'get',
    path: DOC_PATH,
    summary: 'This OpenAPI document',
    tags: ['meta'],
    middleware: protect,
    security: SECURITY,
    responses: {
      200: { description: 'OpenAPI 3.0 document of every route', content: { 'application/json': { schema: z.looseObject({ openapi: z.string() }) } } },
      ...PROTECTED_ERRORS,
    },
  });

/**
 * Serves the document generated from the route definitions. Register it last: it describes
 * what is registered when the first request for it arrives. `servers` is the mount prefix,
 * so clients generated from it work wherever a host app mounts dbzip.
 */
export function registerOpenApiRoute(app: OpenAPIHono<AppEnv>, protect: MiddlewareHandler[]): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'ApiKeyHeader', { type: 'apiKey', in: 'header', name: 'X-API-Key' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'BearerAuth', { type: 'http', scheme: 'bearer', description: 'the same API key, as Authorization: Bearer <key>' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'SessionCookie', {
    type: 'apiKey',
    in: 'cookie',
    name: 'dbzip_session',
    description: 'browsers: set by POST /signin from the page; honoured on same-origin requests only (Sec-Fetch-Site and Origin are checked)',
  });
  app.openapi(openApiRoute(protect), (c) => {
    const prefix = c.req.path.endsWith(DOC_PATH) ? c.req.path.slice(0, -DOC_PATH.length) : '';
    const doc = app.getOpenAPIDocument({
      openapi: '3.0.3',
      info: {
        title: 'dbzip',
        version: DBZIP_VERSION,
        description:
          'Consistent zip backups of live SQLite databases. Every /api route but /api/health needs the API key (or, in a browser, the session cookie ' +
          'set by signing in on the page at /). A browser navigation that fails gets a small HTML page instead of the JSON error body.',
      },
      servers: [{ url: prefix === '' ? '/' : prefix }],
    });
    return c.json(doc as unknown as { openapi: string }, 200);
  });
}
