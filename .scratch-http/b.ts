import { createApp } from '../src/http/app.js';
import { createLogger } from '../src/http/logging.js';
const lines: string[] = [];
const logger = createLogger({ write: (s: string) => { lines.push(s); } });
const key = 'Zx8-q2Lm9vTr4kPw7Yb3';
const app = createApp({ dataDir: 'fixtures/data', auth: { apiKey: key }, logger });
for (const [u, h] of [['/api/health', {}], ['/api/databases', {}], ['/api/databases', { 'x-api-key': key }], ['/api/backup?level=x', { authorization: 'Bearer ' + key }], ['/api/backup?db=nope', { authorization: 'Bearer ' + key }], ['/api/openapi.json', { 'x-api-key': key }], ['/nope', {}]] as const) {
  const r = await app.request(u, { headers: h });
  const body = r.headers.get('content-type')?.includes('zip') ? `<zip ${(await r.arrayBuffer()).byteLength}>` : (await r.text()).slice(0, 300);
  console.log(u, r.status, Object.fromEntries(r.headers), body);
}
const r = await app.request('/api/backup', { headers: { 'x-api-key': key } });
console.log(r.status, Object.fromEntries(r.headers), (await r.arrayBuffer()).byteLength);
await new Promise((r) => setTimeout(r, 100));
console.log(lines.join(''));
