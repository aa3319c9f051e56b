/**
 * dbzip's benchmark, a program of its own (not a test): `npm run bench -- [options]`.
 * Builds or reuses its data, measures the ceiling and every scenario in fresh processes with
 * interleaved repetitions, then prints the tables and writes bench-results/<date>.{json,md}.
 * Exits 1 only when a correctness check fails (an error, a temp file, a changed data dir, an
 * inconsistent snapshot); speed and memory targets are reported, never asserted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { compileRuntime } from './compile.js';
import { acquireLock } from './lock.js';
import { ensureData, type JournalKind } from './data.js';
import { summarizeProfiles, type ProfileSummary } from './profile.js';
import { backgroundBusy, describeMachine, judgeTargets, renderMarkdown, summarize, writeRecord, type BenchRecord, type CeilingSample } from './report.js';
import { runMeasureChild, runScenario, runStartup, type Context, type Scenario, type ScenarioRun, type Via, type WriterMode } from './scenarios.js';
import { resetLedger, type WriterSync } from './writer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;

const HELP = `npm run bench -- [options]

  --total-mb <n>      size of the generated data set in MiB (default 200; docs/benchmark.md figures: 1024)
  --quick             about 30 MiB, one repetition: the CI smoke test
  --reps <n>          repetitions of every scenario, interleaved (default 3; --quick: 1)
  --seed <n>          data generator seed (default 1)
  --largest <mode>    journal mode of the largest database: rollback | wal (default rollback)
  --startup-runs <n>  interleaved dbzip / peer backups of fixtures/data, the small-dir start-up (default 10; --quick: 3; 0: none)
  --levels <list>     compression levels of the library scenarios (default 0,1,6)
  --only <text>       run only scenarios whose id contains one of these comma-separated texts
  --writers <list>    concurrent writer modes to run: none, wal, rollback (default all three)
  --writer-sync <s>   PRAGMA synchronous of the concurrent writer: off | normal | full (default off)
  --baseline-ms <n>   how long the writer runs alone before each backup (default 1000; --quick: 400)
  --http-path <p>     download path on the HTTP server (default /api/backup)
  --profile           also run library L0, L6 and HTTP L0 under --cpu-prof and summarise the profiles
  --skip-stages       do not measure the per-stage costs
  -h, --help          this text

Examples:
  npm run bench -- --quick
  npm run bench -- --total-mb 1024
  npm run bench -- --only library-L0 --reps 5 --profile`;

/** A mistake in the flags: printed without a stack, with a pointer to --help. */
class UsageError extends Error {}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--${name} must be a whole number ≥ 1, got "${value}"`);
  return Number(value);
}

const OPTIONS = {
  'total-mb': { type: 'string' },
  quick: { type: 'boolean', default: false },
  reps: { type: 'string' },
  seed: { type: 'string' },
  largest: { type: 'string' },
  'startup-runs': { type: 'string' },
  levels: { type: 'string' },
  only: { type: 'string' },
  writers: { type: 'string' },
  'writer-sync': { type: 'string' },
  'baseline-ms': { type: 'string' },
  'http-path': { type: 'string' },
  profile: { type: 'boolean', default: false },
  'skip-stages': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parse() {
  let parsed;
  try {
    parsed = parseArgs({ options: OPTIONS, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values } = parsed;
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const quick = values.quick;
  if (quick && values['total-mb'] !== undefined) throw new UsageError('--quick sets the size; leave out --total-mb');
  const levels = (values.levels ?? '0,1,6').split(',').map((l) => {
    if (!/^\d$/.test(l.trim())) throw new UsageError(`--levels takes levels 0 to 9, got "${l}"`);
    return Number(l);
  });
  const largest = values.largest ?? 'rollback';
  if (largest !== 'rollback' && largest !== 'wal') throw new UsageError(`--largest must be rollback or wal, got "${largest}"`);
  const startupRuns = values['startup-runs'] === '0' ? 0 : positiveInt('startup-runs', values['startup-runs'], quick ? 3 : 10);
  const writers = (values.writers ?? 'none,wal,rollback').split(',').map((w) => {
    if (w !== 'none' && w !== 'wal' && w !== 'rollback') throw new UsageError(`--writers takes none, wal and rollback, got "${w}"`);
    return w as WriterMode;
  });
  const writerSync = values['writer-sync'] ?? 'off';
  if (!['off', 'normal', 'full'].includes(writerSync)) throw new UsageError(`--writer-sync must be off, normal or full, got "${writerSync}"`);
  return {
    totalMb: quick ? 30 : positiveInt('total-mb', values['total-mb'], 200),
    quick,
    reps: positiveInt('reps', values.reps, quick ? 1 : 3),
    seed: positiveInt('seed', values.seed, 1),
    largest: largest as JournalKind,
    startupRuns,
    levels: [...new Set(levels)],
    only: values.only?.split(',').filter((s) => s !== ''),
    writers: [...new Set(writers)],
    writerSync: writerSync as WriterSync,
    baselineMs: positiveInt('baseline-ms', values['baseline-ms'], quick ? 400 : 1000),
    httpPath: values['http-path'] ?? '/api/backup',
    profile: values.profile,
    stages: !values['skip-stages'],
  };
}

/**
 * Grouped by writer, the peer first in each group, so every dbzip row runs close in time to the
 * peer row it is divided by (the peer is always kept: the ratios need it).
 */
function scenarioList(levels: readonly number[], only: readonly string[] | undefined, writers: readonly WriterMode[]): Scenario[] {
  const list: Scenario[] = [];
  const add = (via: Via, level: number, writer: WriterMode, check?: 'none') =>
    list.push({
      id: `${via === 'peer' ? 'peer' : `${via}-L${level}`}${check === undefined ? '' : '-check-none'}${writer === 'none' ? '' : `+${writer}-writer`}`,
      via,
      level,
      writer,
      ...(check === undefined ? {} : { check }),
    });
  for (const writer of writers) {
    add('peer', 0, writer);
    // The CLI and the server add their own layers over the library: store mode shows them best.
    add('cli', 0, writer);
    add('cli', 0, writer, 'none');
    for (const level of levels) add('library', level, writer);
    add('http', 0, writer);
  }
  return only === undefined ? list : list.filter((s) => s.via === 'peer' || only.some((o) => s.id.includes(o)));
}

/** Reads every file once so the first measured repetition does not pay for a cold page cache. */
function warmPageCache(files: readonly string[]): void {
  const buffer = Buffer.allocUnsafe(MIB);
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      while (fs.readSync(fd, buffer, 0, MIB, null) > 0);
    } finally {
      fs.closeSync(fd);
    }
  }
}

function describeRun(run: ScenarioRun): string {
  if (run.unavailable !== undefined) return `not available: ${run.unavailable}`;
  if (run.error !== undefined) return `FAILED: ${run.error}`;
  const m = run.measures;
  const parts = [
    `${(run.dbBytes / MIB / (run.durationMs / 1000)).toFixed(0)} MiB/s`,
    `${(run.durationMs / 1000).toFixed(2)} s`,
    `RSS ${((m?.peakRssBytes ?? NaN) / MIB).toFixed(0)} MiB`,
    `loop ${m?.loopDelayMaxMs ?? '?'} ms`,
  ];
  if (run.writer !== null) {
    parts.push(`writer ${run.writer.alone.commitsPerSecond}→${run.writer.during.commitsPerSecond}/s worst ${run.writer.during.maxLatencyMs} ms`);
    parts.push(run.writer.ledger?.ok === true ? 'consistent' : 'INCONSISTENT');
  }
  if (run.tempBytes > 0 || run.tempFiles.length > 0) parts.push(`TEMP FILES ${run.tempFiles.join(', ')} (${run.tempBytes} bytes)`);
  if (run.dataDirChanges.length > 0) parts.push(`DATA DIR CHANGED: ${run.dataDirChanges.join(', ')}`);
  return parts.join(', ');
}

/** Correctness, not speed: what makes the smoke test fail. */
function failures(runs: readonly ScenarioRun[], expectedSkips: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const r of runs) {
    const at = `${r.id} (rep ${r.rep})`;
    if (r.error !== undefined) out.push(`${at}: ${r.error}`);
    if (r.tempBytes > 0 || r.tempFiles.length > 0) out.push(`${at}: temp files ${JSON.stringify(r.tempFiles)} (${r.tempBytes} bytes)`);
    if (r.dataDirChanges.length > 0) out.push(`${at}: data dir changed: ${r.dataDirChanges.join(', ')}`);
    if (r.writer !== null && r.writer.ledger?.ok !== true) out.push(`${at}: inconsistent snapshot ${JSON.stringify(r.writer.ledger)}`);
    if (r.writer !== null && r.writer.errors.length > 0) out.push(`${at}: writer errors ${JSON.stringify(r.writer.errors)}`);
    if (r.announcedSizeExact === false) out.push(`${at}: the announced size (Backup.size) was not the zip's length`);
    const unexpected = r.skipped.filter((s) => !expectedSkips.has(s.path));
    if (r.error === undefined && r.unavailable === undefined && unexpected.length > 0) out.push(`${at}: skipped ${JSON.stringify(unexpected)}`);
  }
  return out;
}

async function main(): Promise<number> {
  const args = parse();
  const started = performance.now();
  const date = new Date().toISOString();
  const log = (line: string) => console.log(line);
  const distIndex = path.join(ROOT, 'dist', 'index.js');
  const cliBin = path.join(ROOT, 'dist', 'cli', 'bin.js');
  if (!fs.existsSync(distIndex) || !fs.existsSync(cliBin)) throw new Error('dist/ is missing: run `npm run build` (npm run bench does it for you)');

  const benchData = path.join(ROOT, 'bench-data');
  const lock = await acquireLock(benchData, log);
  // Holding the lock, any other run-* folder (or the scratch/js of older versions) was left by a run that died.
  for (const name of fs.readdirSync(benchData)) if (name.startsWith('run-') || name === 'scratch' || name === 'js') fs.rmSync(path.join(benchData, name), { recursive: true, force: true });
  const runDir = path.join(benchData, `run-${process.pid}`);
  const scratch = path.join(runDir, 'scratch');
  fs.mkdirSync(scratch, { recursive: true });

  const memory = new Database(':memory:');
  const sqlite = String(memory.prepare('SELECT sqlite_version()').pluck().get());
  memory.close();

  const data = ensureData(benchData, { totalMb: args.totalMb, seed: args.seed, largest: args.largest }, sqlite, log);
  // A run that was killed may have left writer rows behind: start from the generated state.
  for (const db of Object.values(data.writerDb)) resetLedger(path.join(data.dataDir, db));
  const dbFiles = data.databases.map((d) => path.join(data.dataDir, d.path));
  warmPageCache(data.files.map((f) => path.join(data.dataDir, f.path)));
  const machine = describeMachine(ROOT, data.dataDir, sqlite);
  machine.backgroundBusy.before = await backgroundBusy();
  log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${Math.round(machine.memoryBytes / MIB)} MiB, Node ${machine.node}, SQLite ${sqlite}; ${Math.round((machine.backgroundBusy.before ?? NaN) * 100)} % busy with other work`);

  const ctx: Context = {
    data,
    scripts: compileRuntime(path.join(runDir, 'js')),
    distUrl: pathToFileURL(distIndex).href,
    cliBin,
    peerScript: path.join(ROOT, 'bench', 'peer.py'),
    scratch,
    writerSync: args.writerSync,
    baselineMs: args.baselineMs,
    httpPath: args.httpPath,
    childExecArgv: [],
    log,
  };

  let stages: BenchRecord['stages'] = null;
  if (args.stages) {
    log('stages: serialize, quick_check, sha256, crc32, deflate, one database at a time');
    const result = await runMeasureChild(ctx, { kind: 'stages', files: dbFiles, levels: args.levels.filter((l) => l > 0), tmpDir: path.join(scratch, 'stage-tmp') });
    stages = { ...result.stages, peakRssBytes: result.measures.peakRssBytes };
  }

  const scenarios = scenarioList(args.levels, args.only, args.writers);
  const runs: ScenarioRun[] = [];
  const ceilings: CeilingSample[] = [];
  for (let rep = 1; rep <= args.reps; rep++) {
    const ceiling = await runMeasureChild(ctx, { kind: 'ceiling', files: dbFiles, outPath: path.join(scratch, 'ceiling.out'), tmpDir: path.join(scratch, 'ceiling-tmp') });
    ceilings.push({ ...ceiling.ceiling, peakRssBytes: ceiling.measures.peakRssBytes });
    const c = ceiling.ceiling;
    const rate = (ms: number) => (c.bytes / MIB / (ms / 1000)).toFixed(0);
    log(`[rep ${rep}/${args.reps}] ceiling: read ${rate(c.readMs)}, crc32 ${rate(c.crc32Ms)}, copy ${rate(c.copyMs)}, copy+fsync ${rate(c.copyFsyncMs)} MiB/s`);
    for (const scenario of scenarios) {
      const run = await runScenario(ctx, scenario, rep);
      runs.push(run);
      log(`[rep ${rep}/${args.reps}] ${scenario.id}: ${describeRun(run)}`);
    }
  }

  let startup: BenchRecord['startup'] = null;
  const fixtures = path.join(ROOT, 'fixtures', 'data');
  if (args.startupRuns > 0 && fs.existsSync(fixtures)) {
    log(`startup: ${args.startupRuns} interleaved backups of fixtures/data by the CLI and by the peer`);
    startup = await runStartup(ctx, fixtures, args.startupRuns);
  } else if (args.startupRuns > 0) log('startup: skipped, fixtures/data is missing (npm run fixtures)');

  const profiles: ProfileSummary[] = [];
  if (args.profile) {
    const profiled: Scenario[] = [
      { id: 'library-L0-profiled', via: 'library', level: 0, writer: 'none' },
      { id: 'library-L6-profiled', via: 'library', level: 6, writer: 'none' },
      { id: 'http-L0-profiled', via: 'http', level: 0, writer: 'none' },
    ];
    for (const scenario of profiled) {
      const dir = path.join(ROOT, 'bench-results', 'profiles', `${date.replace(/[:.]/g, '')}-${scenario.id}`);
      fs.rmSync(dir, { recursive: true, force: true });
      const run = await runScenario({ ...ctx, childExecArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`] }, scenario, 1);
      log(`${scenario.id}: ${describeRun(run)}`);
      if (run.unavailable === undefined && run.error === undefined) {
        profiles.push(summarizeProfiles(`${scenario.id} (${(run.durationMs / 1000).toFixed(2)} s with the profiler on, loop worst ${run.measures?.loopDelayMaxMs ?? '?'} ms)`, dir, ROOT));
      }
    }
  }

  machine.backgroundBusy.after = await backgroundBusy();
  const summary = summarize(scenarios, runs, ceilings, data);
  const record: BenchRecord = {
    date,
    args,
    machine,
    data: { ...data, dataDir: path.relative(ROOT, data.dataDir) },
    scenarios,
    runs,
    ceilings,
    stages,
    startup,
    profiles,
    summary,
    targets: judgeTargets(summary, data, startup),
    wallMs: Math.round(performance.now() - started),
  };
  delete (record.data as { root?: string }).root;
  const written = writeRecord(path.join(ROOT, 'bench-results'), record);
  console.log(`\n${renderMarkdown(record)}`);
  console.log(`wrote ${path.relative(ROOT, written.md)} and ${path.relative(ROOT, written.json)}`);
  fs.rmSync(runDir, { recursive: true, force: true });
  lock.release();

  const expectedSkips = new Set(data.files.filter((f) => f.kind === 'not-sqlite').map((f) => f.path));
  const failed = failures(runs, expectedSkips);
  if (failed.length > 0) {
    console.error(`\nbench: ${failed.length} correctness failure(s):\n  ${failed.join('\n  ')}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) console.error(`bench: ${error.message} (see --help)`);
    else console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
