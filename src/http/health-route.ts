import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './context.js';

const healthRoute = createRoute({
  method: 'get',
  path: '/api/health',
  summary: 'Liveness: the process answers. Needs no key and never touches the databases.',
  tags: ['meta'],
  security: [],
  responses: {
    200: { description: 'Alive', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }).openapi('Health') } } },
  },
});

/** Registered without `protect`: monitors need no key, and the answer says nothing about the data. */
export function registerHealthRoute(app: OpenAPIHono<AppEnv>): void {
  app.openapi(healthRoute, (c) => c.json({ status: 'ok' as const }, 200));
}
