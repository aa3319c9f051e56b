/**
 * The cost of age encryption (issue 13), separate from the main benchmark but on its data and its
 * bench child: a library backup at level 0 to a file, plain and age-encrypted, interleaved, each in a
 * fresh process. Reports throughput, peak RSS (memory must stay bounded: encryption holds one 64 KiB
 * chunk, not the archive) and checks that the announced size equals the bytes written and, with the
 * reference `age` installed, that `age -d` decrypts the file.
 *
 *   npm run bench:encrypt -- --quick            # ~30 MiB, one repetition (CI smoke test)
 *   npm run bench:encrypt -- --total-mb 1024    # the docs/encryption.md figures
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import type { ChildMessage, ChildResult, ChildTask } from './child.js';
import { compileRuntime } from './compile.js';
import { ensureData } from './data.js';
import { acquireLock } from './lock.js';
import { median } from './report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;

interface Row {
  variant: 'plain' | 'age';
  durationMs: number;
  outputBytes: number;
  announcedSize: number | null;
  peakRssBytes: number;
  cpuMs: number;
}

function runChild(script: string, task: ChildTask): Promise<Extract<ChildResult, { kind: 'library' }>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(task)], {
      env: { ...process.env, TMPDIR: task.tmpDir, SQLITE_TMPDIR: task.tmpDir },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') child.send('go');
      else if (message.type === 'result' && message.result.kind === 'library') resolve(message.result);
      else if (message.type === 'error') reject(new Error(message.message));
    });
    child.on('exit', (code) => reject(new Error(`bench child exited (${code}) before reporting`)));
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, 'total-mb': { type: 'string' }, reps: { type: 'string' }, seed: { type: 'string', default: '1' } },
  });
  const totalMb = values.quick ? 30 : Number(values['total-mb'] ?? 1024);
  const reps = Number(values.reps ?? (values.quick ? 1 : 2));
  if (!Number.isInteger(totalMb) || totalMb < 1 || !Number.isInteger(reps) || reps < 1) throw new Error('--total-mb and --reps must be whole numbers');
  const distIndex = path.join(ROOT, 'dist', 'index.js');
  if (!fs.existsSync(distIndex)) throw new Error('dist/ is missing: run `npm run build` (npm run bench:encrypt does it for you)');
  const log = (line: string) => console.log(line);

  const benchData = path.join(ROOT, 'bench-data');
  const lock = await acquireLock(benchData, log);
  const runDir = path.join(benchData, `run-${process.pid}`);
  try {
    const memory = new Database(':memory:');
    const sqlite = String(memory.prepare('SELECT sqlite_version()').pluck().get());
    memory.close();
    // The main bench's default data set (largest database in rollback mode), so both can share it.
    const data = ensureData(benchData, { totalMb, seed: Number(values.seed), largest: 'rollback' }, sqlite, log);
    const scripts = compileRuntime(path.join(runDir, 'js'));
    const identity = await generateX25519Identity();
    const keyFile = path.join(runDir, 'key.txt');
    fs.writeFileSync(keyFile, `${identity}\n`, { mode: 0o600 });
    const recipient = await identityToRecipient(identity);
    const hasAge = fs.existsSync('/usr/bin/age');

    const rows: Row[] = [];
    let failures = 0;
    for (let rep = 0; rep < reps; rep++) {
      for (const variant of ['plain', 'age'] as const) {
        const tmpDir = path.join(runDir, 'tmp');
        fs.mkdirSync(tmpDir, { recursive: true });
        const outPath = path.join(runDir, variant === 'age' ? 'out.zip.age' : 'out.zip');
        const task: ChildTask = { kind: 'library', distUrl: pathToFileURL(distIndex).href, dataDir: data.dataDir, level: 0, outPath, tmpDir, pin: 'all-blocking', ...(variant === 'age' ? { recipients: [recipient] } : {}) };
        const { outcome, measures } = await runChild(scripts.child, task);
        const row: Row = {
          variant,
          durationMs: outcome.durationMs,
          outputBytes: outcome.outputBytes,
          announcedSize: outcome.announcedSize,
          peakRssBytes: measures.peakRssBytes,
          cpuMs: measures.cpuUserMs + measures.cpuSystemMs,
        };
        rows.push(row);
        log(`rep ${rep + 1} ${variant}: ${(outcome.outputBytes / MIB / (outcome.durationMs / 1000)).toFixed(1)} MiB/s, peak RSS ${Math.round(measures.peakRssBytes / MIB)} MiB, ${outcome.outputBytes} bytes (announced ${outcome.announcedSize})`);
        if (outcome.announcedSize !== null && outcome.announcedSize !== outcome.outputBytes) {
          failures++;
          log(`FAIL: ${variant} announced ${outcome.announcedSize} bytes but wrote ${outcome.outputBytes}`);
        }
        if (variant === 'age' && hasAge && rep === 0) {
          const decrypted = spawnSync('/usr/bin/age', ['-d', '-i', keyFile, '-o', '/dev/null', outPath]);
          if (decrypted.status !== 0) {
            failures++;
            log(`FAIL: age -d refused the encrypted backup: ${decrypted.stderr.toString().trim()}`);
          } else log('age -d decrypts the encrypted backup: ok');
        }
        fs.rmSync(outPath, { force: true });
      }
    }

    const of = (variant: Row['variant']) => rows.filter((r) => r.variant === variant);
    const mibps = (r: Row) => r.outputBytes / MIB / (r.durationMs / 1000);
    const line = (variant: Row['variant']) => {
      const rs = of(variant);
      return `| ${variant} | ${median(rs.map(mibps)).toFixed(1)} | ${(median(rs.map((r) => r.durationMs)) / 1000).toFixed(2)} | ${Math.round(median(rs.map((r) => r.cpuMs)) / 100) / 10} | ${Math.round(Math.max(...rs.map((r) => r.peakRssBytes)) / MIB)} | ${(rs[0]!.outputBytes / MIB).toFixed(1)} |`;
    };
    const plainRate = median(of('plain').map(mibps));
    const ageRate = median(of('age').map(mibps));
    log('');
    log(`encryption cost, ${new Date().toISOString()}, ${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length}, Node ${process.version}, data ${totalMb} MiB (largest database ${(data.largestDb.bytes / MIB).toFixed(0)} MiB), ${reps} repetition(s), medians`);
    log('');
    log('| backup (library, level 0, pin all-blocking, to a file) | MiB/s | s | CPU s | peak RSS MiB | output MiB |');
    log('| --- | --- | --- | --- | --- | --- |');
    log(line('plain'));
    log(line('age'));
    log('');
    log(`age-encrypted runs at ${((ageRate / plainRate) * 100).toFixed(0)} % of the plain backup's speed; peak RSS ${Math.round(Math.max(...of('age').map((r) => r.peakRssBytes)) / MIB)} vs ${Math.round(Math.max(...of('plain').map((r) => r.peakRssBytes)) / MIB)} MiB.`);
    return failures === 0 ? 0 : 1;
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
    lock.release();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
