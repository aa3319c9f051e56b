import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
const Query = z.strictObject({
  level: z.coerce.number().int().min(0).max(9).optional().openapi({ description: 'lvl' }),
  db: z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(z.string().min(1))).optional().openapi({ description: 'db names' }),
});
const route = createRoute({ method: 'get', path: '/api/backup', request: { query: Query }, security: [{ apiKey: [] }], responses: { 200: { description: 'zip', content: { 'application/zip': { schema: z.string().openapi({ format: 'binary' }) } } } } });
const app = new OpenAPIHono({ defaultHook: (r, c) => { if (!r.success) return c.json({ err: r.error.issues }, 400); } });
app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', { type: 'apiKey', in: 'header', name: 'X-API-Key' });
app.openapi(route, (c) => { const q = c.req.valid('query'); return c.json(q as any, 200) as any; });
app.doc('/api/openapi.json', (c) => ({ openapi: '3.0.3', info: { title: 't', version: '1' }, servers: [{ url: c.req.path }] }));
for (const u of ['/api/backup', '/api/backup?db=a', '/api/backup?db=a&db=b&level=3', '/api/backup?level=x', '/api/backup?foo=1', '/api/openapi.json']) {
  const r = await app.request(u); console.log(u, r.status, await r.text());
}
console.log(app.routes.map(r => r.method + ' ' + r.path));
