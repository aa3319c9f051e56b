/**
 * Child process for the restore tests (`node --import tsx restore-child.ts '<json>'`), see restore.ts.
 * reader:  queries a generation database back to back until told to stop; one statement per read,
 *          so each read is one snapshot. Prints `ready`, `gen <n>` the first time it sees a
 *          generation, and `stats <json>` when stopped (IPC 'stop').
 * restore: prints `start`, runs restore() printing `log <message> <path>` for each progress line
 *          (so a test can kill it at a chosen step), then `done <ms>` or `error <message>`.
 */
import Database from 'better-sqlite3';
import { restore } from '../../src/restore/index.js';
import { rowsFor, type ChildRequest, type ReaderStats } from './restore.js';

const request = JSON.parse(process.argv[2] ?? 'null') as ChildRequest;

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

if (request.role === 'reader') {
  const db = new Database(request.dbPath, { fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  const read = db.prepare("SELECT count(*) AS n, min(gen) AS lo, max(gen) AS hi, (SELECT v FROM meta WHERE k = 'gen') AS m FROM items");
  const stats: ReaderStats = { reads: 0, byGen: {}, mixed: 0, errors: [] };
  let stop = false;
  process.on('message', () => {
    stop = true;
  });
  process.on('disconnect', () => {
    stop = true;
  });
  const burst = () => {
    if (stop) {
      db.close();
      print(`stats ${JSON.stringify(stats)}`);
      process.exit(0);
    }
    const until = performance.now() + 3;
    do {
      try {
        const row = read.get() as { n: number; lo: number; hi: number; m: number };
        stats.reads += 1;
        if (row.lo === row.hi && row.lo === row.m && row.n === rowsFor(row.m, request.base)) {
          const key = String(row.m);
          if (stats.byGen[key] === undefined) print(`gen ${key}`);
          stats.byGen[key] = (stats.byGen[key] ?? 0) + 1;
          if (stats.reads === 1) print('ready');
        } else {
          stats.mixed += 1;
          if (stats.mixed <= 3) process.stderr.write(`mixed state: ${JSON.stringify(row)}\n`);
        }
      } catch (error) {
        if (stats.errors.length < 10) stats.errors.push(error instanceof Error ? `${(error as { code?: string }).code ?? ''} ${error.message}` : String(error));
      }
    } while (performance.now() < until);
    setImmediate(burst);
  };
  burst();
} else {
  print('start');
  const started = performance.now();
  try {
    const log = (obj: object, msg?: string) => print(`log ${msg ?? ''} ${(obj as { path?: string }).path ?? ''}`);
    await restore({ archive: request.archive, dataDir: request.dataDir, mode: request.mode, logger: { info: log, warn: log, error: log } });
    print(`done ${Math.round(performance.now() - started)}`);
  } catch (error) {
    print(`error ${error instanceof Error ? error.message.replaceAll('\n', ' | ') : String(error)}`);
    process.exitCode = 1;
  }
}
