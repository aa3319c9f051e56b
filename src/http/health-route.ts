import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';
import { errorResponse, PROTECTED_ERRORS } from './openapi.js';
import { StoreStatusSchema } from './stored-backups-route.js';
import type { StoredBackups } from './stored-backups.js';

const healthRoute = createRoute({
  method: 'get',
  path: '/api/health',
  summary: 'Liveness: the process answers. Needs no key and never touches the databases. With ?details=1 (key required): the stored backups\' last runs.',
  description:
    'Plain: no key, `{ "status": "ok" }`. With `?details=1` the API key (or session) is required and the answer adds `storedBackups`: ' +
    'the store, the schedule and next run, the last run, the last success and the last failure with its reason, so a monitor can alert ' +
    'on "no successful backup in 26 hours". `storedBackups` is null without a store.',
  tags: ['meta'],
  security: [],
  request: { query: z.object({ details: z.enum(['0', '1', 'true', 'false']).optional().openapi({ description: 'Add the stored backups\' status; needs the API key' }) }) },
  responses: {
    200: {
      description: 'Alive',
      content: {
        'application/json': {
          schema: z.object({ status: z.literal('ok'), storedBackups: StoreStatusSchema.nullable().optional() }).openapi('Health'),
        },
      },
    },
    400: errorResponse('Bad query'),
    ...PROTECTED_ERRORS,
  },
});

/** Runs the protect chain (rate limit, then auth) by hand, for the one request kind that needs it. */
function runChain(chain: MiddlewareHandler<AppEnv>[], c: Parameters<MiddlewareHandler<AppEnv>>[0]): Promise<void> {
  const step = async (i: number): Promise<void> => {
    const handler = chain[i];
    if (handler !== undefined) await handler(c, () => step(i + 1));
  };
  return step(0);
}

/** Registered without `protect`: monitors need no key, and the plain answer says nothing about the data. */
export function registerHealthRoute(app: OpenAPIHono<AppEnv>, protect: MiddlewareHandler<AppEnv>[], stored: StoredBackups | undefined): void {
  app.openapi(healthRoute, async (c) => {
    const details = c.req.valid('query').details;
    if (details !== '1' && details !== 'true') return c.json({ status: 'ok' as const }, 200);
    // Details name the store and the last failure's reason: the same key as every protected route.
    await runChain(protect, c);
    return c.json({ status: 'ok' as const, storedBackups: stored?.status() ?? null }, 200);
  });
}
