/**
 * Upload throughput and memory of the backup stores (issue 12), in one run on one machine:
 * the same synthetic stream of `--mb` MiB (default 1024) written
 *   1. to a plain file (writeFileAtomically: .partial, flush, link: the folder store's path),
 *   2. to a local S3 server with one PUT of known length (a stored backup),
 *   3. to the same server as a multipart upload of unknown length (a deflated backup), 8 MiB parts,
 *   4. to the same server with one PUT, age-encrypted as it streams (issue 13: an encrypted stored
 *      backup; its exact length is announced before the first byte).
 * Each runs in a fresh child process that reports its peak RSS (maxRSS), so one measure cannot
 * inflate the next. The S3 server (s3rver, writing to disk) runs in a process of its own.
 *
 *   npx tsx bench/store-upload.ts [--mb 1024] [--reps 1]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const MiB = 1024 ** 2;
const SELF = fileURLToPath(import.meta.url);
const TSX = path.resolve(path.dirname(SELF), '..', 'node_modules', '.bin', 'tsx');

/** `mb` MiB in 1 MiB chunks cut from one random 8 MiB block: incompressible, cheap to make. */
function source(mb: number): Readable {
  const block = randomBytes(8 * MiB);
  let sent = 0;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (sent === mb) return void this.push(null);
      const at = (sent % 8) * MiB;
      sent += 1;
      this.push(Buffer.from(block.subarray(at, at + MiB)));
    },
  });
}

async function child(mode: string, mb: number, dir: string, endpoint: string): Promise<void> {
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  const { writeFileAtomically } = await import('../src/store/atomic-file.js');
  const { openStore } = await import('../src/store/open.js');
  const { backupFileName } = await import('../src/archive/file-name.js');
  const name = backupFileName('bench', new Date());
  const started = process.hrtime.bigint();
  let bytes: number;
  if (mode === 'file') {
    bytes = await writeFileAtomically(source(mb), path.join(dir, name), { replace: false });
  } else if (mode === 's3-put-age') {
    const { createSealer } = await import('../src/archive/age.js');
    const { generateX25519Identity, identityToRecipient } = await import('age-encryption');
    const sealer = await createSealer({ recipients: [await identityToRecipient(await generateX25519Identity())] });
    const store = await openStore({ url: `s3://bench/run?endpoint=${encodeURIComponent(endpoint)}`, env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } });
    ({ bytes } = await store.put(`${name}.age`, sealer.seal(source(mb)), { size: sealer.encryptedSize(mb * MiB) }));
    await store.delete(`${name}.age`);
    store.close();
  } else {
    const store = await openStore({ url: `s3://bench/run?endpoint=${encodeURIComponent(endpoint)}`, env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } });
    ({ bytes } = await store.put(name, source(mb), { size: mode === 's3-put' ? mb * MiB : null }));
    await store.delete(name);
    store.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (mode === 'file') fs.rmSync(path.join(dir, name));
  process.stdout.write(`${JSON.stringify({ mode, bytes, seconds, mibPerSecond: bytes / MiB / seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
}

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(TSX, [SELF, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')} exited ${code}`))));
  });
}

async function serveS3(dir: string): Promise<void> {
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: 'bench', configs: [] }] });
  const { port } = await server.run();
  process.stdout.write(`http://127.0.0.1:${port}\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'child') return child(argv[1] ?? '', Number(argv[2]), argv[3] ?? '', argv[4] ?? '');
  if (argv[0] === 's3-server') return serveS3(argv[1] ?? '');
  const mb = Number(argv[argv.indexOf('--mb') + 1] ?? 1024) || 1024;
  const reps = Number(argv.includes('--reps') ? argv[argv.indexOf('--reps') + 1] : 1) || 1;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbzip-bench-store-'));
  const server = spawn(TSX, [SELF, 's3-server', path.join(dir, 's3')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const endpoint = await new Promise<string>((resolve) => server.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  const rows: Record<string, unknown>[] = [];
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const mode of ['file', 's3-put', 's3-multipart', 's3-put-age']) {
        rows.push(JSON.parse(await run(['child', mode, String(mb), dir, endpoint])) as Record<string, unknown>);
      }
    }
  } finally {
    server.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`\n${new Date().toISOString()} · ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'} · Node ${process.version} · load ${load} · ${mb} MiB\n`);
  console.log('| target | MiB/s | seconds | peak RSS MiB |\n|---|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${String(r['mode'])} | ${(r['mibPerSecond'] as number).toFixed(1)} | ${(r['seconds'] as number).toFixed(1)} | ${(r['maxRssMiB'] as number).toFixed(0)} |`);
  }
}

await main();
