/**
 * Medians across repetitions, the targets of issues #4 and #11 judged from them, and the record:
 * bench-results/<date>.json (everything, every repetition) and <date>.md (the tables), each
 * with the date, machine, Node, SQLite and dependency versions beside the numbers.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StageResult } from './ceiling.js';
import type { DataSet } from './data.js';
import type { ProfileSummary } from './profile.js';
import type { Scenario, ScenarioRun, StartupRuns } from './scenarios.js';

const MIB = 1024 * 1024;

export interface Machine {
  /** Share of all cores busy with other work (other containers on this VM, say) over 1 s, before and after the run. */
  backgroundBusy: { before: number | null; after: number | null };
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  os: string;
  filesystem: string;
  node: string;
  sqlite: string;
  dbzip: string;
  gitCommit: string;
  dependencies: Record<string, string>;
}

export interface CeilingSample {
  bytes: number;
  readMs: number;
  crc32Ms: number;
  copyMs: number;
  copyFsyncMs: number;
  peakRssBytes: number;
}

export interface BenchRecord {
  date: string;
  args: Record<string, unknown>;
  machine: Machine;
  data: Omit<DataSet, 'root' | 'dataDir'> & { dataDir: string };
  scenarios: Scenario[];
  runs: ScenarioRun[];
  ceilings: CeilingSample[];
  stages: (StageResult & { peakRssBytes: number }) | null;
  /** The small data dir (fixtures/data): dbzip's CLI and the peer, alternated. */
  startup: StartupRuns | null;
  profiles: ProfileSummary[];
  summary: ScenarioSummary[];
  targets: Target[];
  wallMs: number;
}

export interface ScenarioSummary {
  id: string;
  via: Scenario['via'];
  level: number;
  writer: Scenario['writer'];
  check: 'quick' | 'none';
  reps: number;
  unavailable?: string;
  errors: string[];
  mibPerSecond: number;
  ratioToCeiling: number;
  ceilingName: 'copy' | 'copy+fsync';
  /** MiB/s ÷ the peer's MiB/s with the same writer, same run (medians); null for the peer itself or without one. */
  ratioToPeer: number | null;
  ttfbMs: number | null;
  peakRssMib: number;
  rssToLargestDb: number;
  /** The worst event loop delay seen in any repetition. */
  loopDelayMaxMs: number;
  tempBytes: number;
  tempFiles: string[];
  /** Bytes the process passed to write() beyond the zip itself (worst repetition); null without /proc. */
  extraWrittenBytes: number | null;
  dataDirChanged: boolean;
  outputMib: number;
  compressionRatio: number;
  pinWindowMs: number | null;
  /** CPU time of the backup's process (and, for HTTP, the client's) per second of backup. */
  cpuCores: number;
  announcedSizeExact: boolean | null;
  unexpectedSkips: string[];
  writerStats: {
    aloneCommitsPerSecond: number;
    duringCommitsPerSecond: number;
    aloneWorstMs: number;
    duringWorstMs: number;
    /** The worst commit during the backup (over all repetitions): its CPU time and context switches. */
    duringWorst: { cpuMs: number; voluntary: number; involuntary: number };
    walBeforeMib: number;
    walMaxMib: number;
    /** Share of all cores idle, median: when the backup leaves CPU idle, a slower writer is not a CPU effect. */
    idleAlone: number | null;
    idleDuring: number | null;
    /** Share of one core the writer got, and its commits per CPU-second, alone and during. */
    cpuShareAlone: number;
    cpuShareDuring: number;
    perCpuSecondAlone: number;
    perCpuSecondDuring: number;
    consistent: number;
    checked: number;
    errors: number;
  } | null;
}

export interface Target {
  name: string;
  goal: string;
  measured: string;
  status: 'met' | 'missed' | 'n/a';
}

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function nullableMedian(values: (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? null : median(known);
}

const round = (n: number, digits = 1): number => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : NaN);

function versionOf(root: string, name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function filesystemOf(dir: string): string {
  try {
    const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    const real = fs.realpathSync(dir);
    const best = mounts.filter((m) => m[1] !== undefined && (real === m[1] || real.startsWith(m[1] === '/' ? '/' : `${m[1]}/`))).sort((a, b) => (b[1]?.length ?? 0) - (a[1]?.length ?? 0))[0];
    return best === undefined ? 'unknown' : `${best[2]} (${best[0]})`;
  } catch {
    return 'unknown';
  }
}

/** Share of all cores busy over `ms` while this process sleeps: other load on the machine. */
export async function backgroundBusy(ms = 1000): Promise<number | null> {
  const read = (): { idle: number; total: number } | null => {
    try {
      const f = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
      return { idle: (f[3] ?? 0) + (f[4] ?? 0), total: f.slice(0, 8).reduce((a, b) => a + b, 0) };
    } catch {
      return null;
    }
  };
  const a = read();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = read();
  if (a === null || b === null || b.total <= a.total) return null;
  return Math.round((1 - (b.idle - a.idle) / (b.total - a.total)) * 100) / 100;
}

export function describeMachine(root: string, dataDir: string, sqlite: string): Machine {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };
  // A copy made with `git archive` has no .git: BENCH_GIT_COMMIT names the commit it came from.
  let gitCommit = process.env.BENCH_GIT_COMMIT ?? 'unknown';
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    gitCommit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'src') !== '';
    if (dirty) gitCommit += ' (src/ has uncommitted changes)';
  } catch {
    // not a git checkout
  }
  const dependencies: Record<string, string> = {};
  for (const name of [...Object.keys(pkg.dependencies), 'typescript', 'tsx']) dependencies[name] = versionOf(root, name);
  return {
    backgroundBusy: { before: null, after: null },
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    filesystem: filesystemOf(dataDir),
    node: process.version,
    sqlite,
    dbzip: pkg.version,
    gitCommit,
    dependencies,
  };
}

export function ceilingMibps(samples: readonly CeilingSample[], key: 'readMs' | 'crc32Ms' | 'copyMs' | 'copyFsyncMs'): number {
  return median(samples.map((s) => s.bytes / MIB / (s[key] / 1000)));
}

export function summarize(scenarios: readonly Scenario[], runs: readonly ScenarioRun[], ceilings: readonly CeilingSample[], data: DataSet): ScenarioSummary[] {
  const copy = ceilingMibps(ceilings, 'copyMs');
  const copyFsync = ceilingMibps(ceilings, 'copyFsyncMs');
  const expectedSkips = new Set(data.files.filter((f) => f.kind === 'not-sqlite').map((f) => f.path));
  const summaries = scenarios.map((scenario): ScenarioSummary => {
    const all = runs.filter((r) => r.id === scenario.id);
    const ok = all.filter((r) => r.error === undefined && r.unavailable === undefined && r.measures !== null);
    // The CLI fsyncs its output; the peer, like the library rows, does not.
    const ceilingName = scenario.via === 'cli' ? 'copy+fsync' : 'copy';
    const mibps = median(ok.map((r) => r.dbBytes / MIB / (r.durationMs / 1000)));
    const peak = median(ok.map((r) => r.measures?.peakRssBytes ?? NaN));
    const writerRuns = ok.filter((r) => r.writer !== null);
    const summary: ScenarioSummary = {
      id: scenario.id,
      via: scenario.via,
      level: scenario.level,
      writer: scenario.writer,
      check: scenario.check ?? 'quick',
      reps: ok.length,
      errors: all.flatMap((r) => (r.error === undefined ? [] : [r.error])),
      mibPerSecond: round(mibps),
      ratioToCeiling: round(mibps / (ceilingName === 'copy' ? copy : copyFsync), 2),
      ceilingName,
      ratioToPeer: null,
      ttfbMs: ok.some((r) => r.ttfbMs !== null) ? round(median(ok.map((r) => r.ttfbMs ?? NaN)), 0) : null,
      peakRssMib: round(peak / MIB, 0),
      rssToLargestDb: round(peak / data.largestDb.bytes, 2),
      loopDelayMaxMs: round(Math.max(...ok.map((r) => r.measures?.loopDelayMaxMs ?? NaN)), 1),
      tempBytes: Math.max(0, ...all.map((r) => r.tempBytes)),
      tempFiles: [...new Set(all.flatMap((r) => r.tempFiles))],
      extraWrittenBytes: ok.some((r) => r.measures?.wcharBytes === null) ? null : Math.max(0, ...ok.map((r) => (r.measures?.wcharBytes ?? 0) - r.outputBytes)),
      dataDirChanged: all.some((r) => r.dataDirChanges.length > 0),
      outputMib: round(median(ok.map((r) => r.outputBytes)) / MIB, 1),
      compressionRatio: round(median(ok.map((r) => r.inputBytes / r.outputBytes)), 2),
      pinWindowMs: ok.some((r) => r.pinWindowMs !== null) ? round(median(ok.map((r) => r.pinWindowMs ?? NaN)), 2) : null,
      cpuCores: round(median(ok.map((r) => ((r.measures?.cpuUserMs ?? NaN) + (r.measures?.cpuSystemMs ?? NaN) + r.clientCpuMs) / r.durationMs)), 2),
      announcedSizeExact: ok.some((r) => r.announcedSizeExact !== null) ? ok.every((r) => r.announcedSizeExact !== false) : null,
      unexpectedSkips: [...new Set(ok.flatMap((r) => r.skipped.filter((s) => !expectedSkips.has(s.path)).map((s) => `${s.path} (${s.code})`)))],
      writerStats:
        writerRuns.length === 0
          ? null
          : {
              aloneCommitsPerSecond: round(median(writerRuns.map((r) => r.writer?.alone.commitsPerSecond ?? NaN)), 0),
              duringCommitsPerSecond: round(median(writerRuns.map((r) => r.writer?.during.commitsPerSecond ?? NaN)), 0),
              aloneWorstMs: round(Math.max(...writerRuns.map((r) => r.writer?.alone.maxLatencyMs ?? NaN)), 1),
              duringWorstMs: round(Math.max(...writerRuns.map((r) => r.writer?.during.maxLatencyMs ?? NaN)), 1),
              duringWorst: [...writerRuns].sort((a, b) => (b.writer?.during.maxLatencyMs ?? 0) - (a.writer?.during.maxLatencyMs ?? 0))[0]?.writer?.during.worst ?? { cpuMs: NaN, voluntary: 0, involuntary: 0 },
              walBeforeMib: round(median(writerRuns.map((r) => r.wal.beforeBytes)) / MIB, 1),
              walMaxMib: round(Math.max(...writerRuns.map((r) => r.wal.maxBytes)) / MIB, 1),
              idleAlone: nullableMedian(writerRuns.map((r) => r.writer?.idleAlone ?? null)),
              idleDuring: nullableMedian(writerRuns.map((r) => r.writer?.idleDuring ?? null)),
              cpuShareAlone: round(median(writerRuns.map((r) => r.writer?.alone.cpuShare ?? NaN)), 2),
              cpuShareDuring: round(median(writerRuns.map((r) => r.writer?.during.cpuShare ?? NaN)), 2),
              perCpuSecondAlone: round(median(writerRuns.map((r) => r.writer?.alone.commitsPerCpuSecond ?? NaN)), 0),
              perCpuSecondDuring: round(median(writerRuns.map((r) => r.writer?.during.commitsPerCpuSecond ?? NaN)), 0),
              consistent: writerRuns.filter((r) => r.writer?.ledger?.ok === true).length,
              checked: writerRuns.length,
              errors: writerRuns.reduce((n, r) => n + (r.writer?.errors.reduce((m, e) => m + e.count, 0) ?? 0), 0),
            },
    };
    const unavailable = all.find((r) => r.unavailable !== undefined)?.unavailable;
    if (unavailable !== undefined) summary.unavailable = unavailable;
    return summary;
  });
  for (const s of summaries) {
    const peer = summaries.find((p) => p.via === 'peer' && p.writer === s.writer && p.reps > 0);
    if (s.via !== 'peer' && peer !== undefined && s.reps > 0) s.ratioToPeer = round(s.mibPerSecond / peer.mibPerSecond, 2);
  }
  return summaries;
}

/** Snapshot work as src/ does it (serialize, quick_check, sha256, crc32) as one sequential stage, in ms. */
export function snapshotStageMs(stages: StageResult): number {
  return stages.serializeMs + stages.checkMs + stages.sha256Ms + stages.crc32Ms;
}

/** The targets of issue 11: dbzip against the naive peer, in the same run. */
function peerTargets(summary: readonly ScenarioSummary[], data: DataSet, startup: StartupRuns | null): Target[] {
  const targets: Target[] = [];
  const find = (via: string, writer: string, check: 'quick' | 'none') => summary.find((s) => s.via === via && s.level === 0 && s.writer === writer && s.check === check && s.reps > 0);
  for (const [check, goal] of [['quick', 1.3], ['none', 2.5]] as const) {
    const cli = find('cli', 'none', check);
    if (cli?.ratioToPeer === null || cli?.ratioToPeer === undefined) continue;
    targets.push({
      name: `CLI to a file, ${check === 'quick' ? 'default (checked)' : '--check none'}, vs the peer`,
      goal: `≥ ${goal} × the peer's MiB/s`,
      measured: `${cli.ratioToPeer} × (${cli.mibPerSecond} vs ${find('peer', 'none', 'quick')?.mibPerSecond ?? '?'} MiB/s)`,
      status: cli.ratioToPeer >= goal ? 'met' : 'missed',
    });
    const drifts = (['wal', 'rollback'] as const).flatMap((writer) => {
      const row = find('cli', writer, check);
      return row?.ratioToPeer === null || row?.ratioToPeer === undefined ? [] : [{ writer, ratio: row.ratioToPeer, drift: row.ratioToPeer / (cli.ratioToPeer ?? NaN) - 1 }];
    });
    if (drifts.length > 0) {
      targets.push({
        name: `same ratio with the writer (CLI, ${check === 'quick' ? 'checked' : '--check none'})`,
        goal: `within 20 % of ${cli.ratioToPeer} ×`,
        measured: drifts.map((d) => `${d.writer} writer ${d.ratio} × (${d.drift >= 0 ? '+' : ''}${Math.round(d.drift * 100)} %)`).join('; '),
        status: drifts.every((d) => d.drift >= -0.2) ? 'met' : 'missed',
      });
    }
  }
  const limitMib = (1.3 * data.largestDb.bytes) / MIB + 100;
  const rssRows = summary.filter((s) => s.via === 'cli' && s.level === 0 && s.writer === 'none' && s.reps > 0);
  if (rssRows.length > 0) {
    targets.push({
      name: `peak RSS, CLI (largest db ${data.largestDb.path}, ${data.largestDb.kind === 'sqlite-wal' ? 'WAL' : 'rollback'})`,
      goal: `≤ 1.3 × largest db + 100 MiB = ${Math.round(limitMib)} MiB`,
      measured: rssRows.map((s) => `${s.id}: ${s.peakRssMib} MiB`).join('; ') + `; peer ${find('peer', 'none', 'quick')?.peakRssMib ?? '?'} MiB`,
      status: rssRows.every((s) => s.peakRssMib <= limitMib) ? 'met' : 'missed',
    });
  }
  const peerRollback = find('peer', 'rollback', 'quick');
  const rollbackRows = summary.filter((s) => s.via === 'cli' && s.writer === 'rollback' && s.reps > 0 && s.writerStats !== null);
  if (peerRollback?.writerStats && rollbackRows.length > 0) {
    const peerWorst = peerRollback.writerStats.duringWorstMs;
    targets.push({
      name: "rollback writer's worst commit",
      goal: `no worse than with the peer (${peerWorst} ms)`,
      measured: rollbackRows.map((s) => `${s.id}: ${s.writerStats?.duringWorstMs ?? '?'} ms`).join('; '),
      status: rollbackRows.every((s) => (s.writerStats?.duringWorstMs ?? Infinity) <= peerWorst) ? 'met' : 'missed',
    });
  }
  if (startup !== null) {
    const d = median(startup.dbzipMs);
    const p = median(startup.peerMs);
    targets.push({
      name: 'small data dir (fixtures/data), wall time',
      goal: "dbzip backup ≤ the peer's",
      measured: `${round(d, 0)} ms vs ${round(p, 0)} ms (median of ${startup.dbzipMs.length} interleaved runs each)`,
      status: d <= p ? 'met' : 'missed',
    });
  }
  return targets;
}

export function judgeTargets(summary: readonly ScenarioSummary[], data: DataSet, startup: StartupRuns | null = null): Target[] {
  const find = (via: string, level: number, writer: string) => summary.find((s) => s.via === via && s.level === level && s.writer === writer && s.check === 'quick' && s.reps > 0);
  const targets: Target[] = peerTargets(summary, data, startup);
  const store = find('library', 0, 'none');
  if (store !== undefined) {
    targets.push({
      name: 'store mode vs copy ceiling',
      goal: '≥ 50 % of the copy ceiling',
      measured: `${Math.round(store.ratioToCeiling * 100)} % (${store.mibPerSecond} MiB/s)`,
      status: store.ratioToCeiling >= 0.5 ? 'met' : 'missed',
    });
    const limitMib = (1.3 * data.largestDb.bytes) / MIB + 100;
    targets.push({
      name: 'peak RSS (library, store)',
      goal: `≤ 1.3 × largest db + 100 MiB = ${Math.round(limitMib)} MiB`,
      measured: `${store.peakRssMib} MiB = ${store.rssToLargestDb} × largest db (${Math.round(data.largestDb.bytes / MIB)} MiB)`,
      status: store.peakRssMib <= limitMib ? 'met' : 'missed',
    });
  }
  const measured = summary.filter((s) => s.reps > 0);
  if (measured.length === 0) return targets;
  // The target is for a server's event loop: a CLI row's worst delay includes loading its modules at start-up.
  const serving = measured.filter((s) => s.via !== 'cli' && s.via !== 'peer');
  const worstLoop = Math.max(...serving.map((s) => s.loopDelayMaxMs));
  const worstLoopAt = serving.find((s) => s.loopDelayMaxMs === worstLoop)?.id ?? '?';
  targets.push({
    name: 'event loop worst delay',
    goal: `< 100 ms during the backup, library and HTTP rows${data.spec.totalMb < 1024 ? ' (target is for 1 GiB; this run is smaller)' : ''}`,
    measured: `${worstLoop} ms (worst: ${worstLoopAt})`,
    status: worstLoop < 100 ? 'met' : 'missed',
  });
  const temp = Math.max(0, ...summary.map((s) => s.tempBytes));
  const tempFiles = summary.flatMap((s) => s.tempFiles);
  const changed = summary.filter((s) => s.dataDirChanged).map((s) => s.id);
  targets.push({
    name: 'temp files',
    goal: '0 bytes in TMPDIR; data dir unchanged (ignoring -wal/-shm/-journal)',
    measured: `${temp} bytes in ${tempFiles.length} file(s); data dir ${changed.length === 0 ? 'unchanged' : `changed in ${changed.join(', ')}`}`,
    status: temp === 0 && tempFiles.length === 0 && changed.length === 0 ? 'met' : 'missed',
  });
  const withWriter = summary.filter((s) => s.writerStats !== null && s.via !== 'peer');
  const checked = withWriter.reduce((n, s) => n + (s.writerStats?.checked ?? 0), 0);
  const consistent = withWriter.reduce((n, s) => n + (s.writerStats?.consistent ?? 0), 0);
  const skips = withWriter.flatMap((s) => s.unexpectedSkips);
  targets.push({
    name: 'consistent snapshots under the writer',
    goal: 'ledger SUM(amount) = 0 in every backup; no database skipped',
    measured: `${consistent}/${checked} consistent${skips.length > 0 ? `; skipped: ${[...new Set(skips)].join(', ')}` : ''}`,
    status: checked === 0 ? 'n/a' : consistent === checked && skips.length === 0 ? 'met' : 'missed',
  });
  const walRows = withWriter.filter((s) => s.writer === 'wal');
  if (walRows.length > 0) {
    // CPU taken by the backup shows as a smaller CPU share for the writer; anything else (waiting on a lock,
    // dearer commits while the WAL cannot be reset) shows as fewer commits per second of the writer's own CPU.
    const parts = walRows.map((s) => {
      const w = s.writerStats;
      const efficiency = (w?.perCpuSecondDuring ?? NaN) / (w?.perCpuSecondAlone ?? NaN);
      // A commit that slept (voluntary switches) for most of a long wall time waited on something; preemption is CPU.
      const waitedMs = w === null ? NaN : w.duringWorst.voluntary > 0 ? w.duringWorstMs - w.duringWorst.cpuMs : 0;
      const ok = waitedMs < 50 && efficiency >= 0.9;
      return `${s.id}: ${Math.round(efficiency * 100)} % commits per writer CPU-second (CPU share ${w?.cpuShareAlone ?? '?'} → ${w?.cpuShareDuring ?? '?'}); worst commit ${w?.duringWorstMs ?? '?'} ms of which ${round(waitedMs, 1)} ms sleeping${ok ? '' : ' ✗'}`;
    });
    targets.push({
      name: 'WAL writer unaffected beyond CPU',
      goal: 'no commit sleeps ≥ 50 ms (a lock wait); commits per second of the writer\'s own CPU ≥ 90 % of alone',
      measured: parts.join('; '),
      status: parts.some((p) => p.endsWith('✗')) ? 'missed' : 'met',
    });
  }
  return targets;
}

const pct = (v: number | null): string => (v === null ? '?' : `${Math.round(v * 100)} %`);

const cell = (v: number | string | null | boolean | undefined): string => (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? '–' : String(v));

function table(header: string[], rows: (string | number | null | boolean | undefined)[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

export function renderMarkdown(record: BenchRecord): string {
  const { machine, data } = record;
  const mib = (n: number) => Math.round(n / MIB);
  const out: string[] = [];
  out.push(`# dbzip bench — ${record.date}`);
  out.push('');
  out.push(
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${mib(machine.memoryBytes)} MiB RAM, ${machine.os}, data on ${machine.filesystem}; ` +
      `busy with other work when idle for us: ${pct(machine.backgroundBusy.before)} before, ${pct(machine.backgroundBusy.after)} after the run. ` +
      `Node ${machine.node}, SQLite ${machine.sqlite}, dbzip ${machine.dbzip} @ ${machine.gitCommit}; ` +
      Object.entries(machine.dependencies)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') +
      '.',
  );
  out.push('');
  const dbs = data.databases.map((d) => `${d.path} ${mib(d.bytes)} MiB (${d.kind === 'sqlite-wal' ? 'WAL' : 'rollback'}, ${data.zeroFreePages[d.path] ?? '?'} zero free pages)`).join(', ');
  const assets = data.files.filter((f) => f.kind === 'asset');
  out.push(
    `Data: --total-mb ${data.spec.totalMb} seed ${data.spec.seed} --largest ${data.spec.largest}, secure_delete and retention deletes (${data.reused ? 'reused' : 'generated'}; generating took ${(data.generatedInMs / 1000).toFixed(0)} s): ${dbs}; ` +
      `${assets.length} asset files ${mib(assets.reduce((n, f) => n + f.bytes, 0))} MiB; a non-SQLite legacy.db. Largest database ${mib(data.largestDb.bytes)} MiB. ` +
      `${String(record.args.reps)} repetition(s), interleaved; medians unless marked worst. MiB/s counts database bytes. Whole run ${(record.wallMs / 1000).toFixed(0)} s.`,
  );
  out.push('');
  out.push('## Ceiling (no SQLite, no snapshot)');
  out.push('');
  const c = record.ceilings;
  out.push(
    table(
      ['read db files', 'crc32 (zlib, in memory)', 'copy = read + write one file', 'copy + fsync', 'peak RSS'],
      [[`${round(ceilingMibps(c, 'readMs'), 0)} MiB/s`, `${round(ceilingMibps(c, 'crc32Ms'), 0)} MiB/s`, `${round(ceilingMibps(c, 'copyMs'), 0)} MiB/s`, `${round(ceilingMibps(c, 'copyFsyncMs'), 0)} MiB/s`, `${mib(median(c.map((s) => s.peakRssBytes)))} MiB`]],
    ),
  );
  out.push('');
  if (record.stages !== null) {
    const s = record.stages;
    const rate = (ms: number) => `${round(s.bytes / MIB / (ms / 1000), 0)} MiB/s (${round(ms / 1000, 2)} s)`;
    out.push('## Snapshot stages, one at a time, summed over all databases');
    out.push('');
    out.push('As src/snapshot/requests.ts does them: serialize; quick_check inside the read transaction (WAL), alongside serialize in a second worker (rollback journal from 16 MiB) or on a copy (smaller rollback-journal databases); sha256; crc32 (in the backup, on the main thread). Then deflate as one zlib stream per image (one core), and two alternatives: every image checked on a copy, and serialize with `PRAGMA mmap_size`.');
    out.push('');
    const levels = Object.keys(s.deflateMs);
    out.push(
      table(
        ['serialize', 'quick_check (own cost)', 'sha256', 'crc32', ...levels.map((l) => `deflate ${l}, one stream (ratio)`), 'alt: copy + quick_check, every db', 'alt: serialize, mmap'],
        [[rate(s.serializeMs), rate(s.checkMs), rate(s.sha256Ms), rate(s.crc32Ms), ...levels.map((l) => `${rate(s.deflateMs[l] ?? NaN)} ${round(s.bytes / (s.deflatedBytes[l] ?? NaN), 2)}×`), rate(s.quickCheckMs), rate(s.serializeMmapMs)]],
      ),
    );
    out.push('');
  }
  out.push('## Backups');
  out.push('');
  out.push(
    table(
      ['scenario', 'writer', 'MiB/s', '× peer', '× ceiling', 'TTFB ms', 'peak RSS MiB', 'RSS / largest db', 'loop worst ms', 'CPU cores', 'temp bytes', 'other bytes written', 'out MiB', 'ratio', 'pin ms'],
      record.summary.map((s) =>
        s.unavailable !== undefined
          ? [s.id, s.writer, `not available: ${s.unavailable}`, '', '', '', '', '', '', '', '', '', '', '', '']
          : s.reps === 0
            ? [s.id, s.writer, `failed: ${s.errors[0] ?? '?'}`, '', '', '', '', '', '', '', '', '', '', '', '']
            : [s.id, s.writer, s.mibPerSecond, s.via === 'peer' ? '1' : s.ratioToPeer, `${s.ratioToCeiling} (${s.ceilingName})`, s.ttfbMs, s.peakRssMib, s.rssToLargestDb, s.loopDelayMaxMs, s.cpuCores, s.tempBytes, s.extraWrittenBytes, s.outputMib, `${s.compressionRatio}×`, s.pinWindowMs],
      ),
    ),
  );
  out.push('');
  if (record.startup !== null) {
    const st = record.startup;
    out.push('## Small data dir: start-up');
    out.push('');
    out.push(`\`dbzip backup ${path.relative(process.cwd(), st.dataDir)} -o x.zip\` (the CLI, spawn to exit, with its fsync) and the peer on the same dir, alternated ${st.dbzipMs.length} times.`);
    out.push('');
    const ms = (v: number[]) => `${round(median(v), 0)} (${round(Math.min(...v), 0)}–${round(Math.max(...v), 0)})`;
    out.push(table(['dbzip backup ms, median (min–max)', 'peer ms, median (min–max)', 'dbzip ÷ peer'], [[ms(st.dbzipMs), ms(st.peerMs), round(median(st.dbzipMs) / median(st.peerMs), 2)]]));
    out.push('');
  }
  const writerRows = record.summary.filter((s) => s.writerStats !== null && s.reps > 0);
  if (writerRows.length > 0) {
    out.push('## The writer: alone (just before) vs during the backup');
    out.push('');
    out.push(
      table(
        ['scenario', 'writer db', 'commits/s alone → during', 'writer CPU share', 'commits per writer CPU-s', 'worst commit ms', 'machine CPU idle', 'largest WAL db -wal MiB before → max', 'consistent', 'writer errors'],
        writerRows.map((s) => {
          const w = s.writerStats;
          if (w === null) return [s.id];
          return [s.id, `${s.writer === 'wal' ? data.writerDb.wal : data.writerDb.rollback} (${s.writer})`, `${w.aloneCommitsPerSecond} → ${w.duringCommitsPerSecond} (${Math.round((w.duringCommitsPerSecond / w.aloneCommitsPerSecond) * 100)} %)`, `${w.cpuShareAlone} → ${w.cpuShareDuring}`, `${w.perCpuSecondAlone} → ${w.perCpuSecondDuring} (${Math.round((w.perCpuSecondDuring / w.perCpuSecondAlone) * 100)} %)`, `${w.aloneWorstMs} → ${w.duringWorstMs} (CPU ${w.duringWorst.cpuMs} ms, ${w.duringWorst.voluntary} waits, ${w.duringWorst.involuntary} preemptions)`, `${pct(w.idleAlone)} → ${pct(w.idleDuring)}`, `${w.walBeforeMib} → ${w.walMaxMib}`, `${w.consistent}/${w.checked}`, w.errors];
        }),
      ),
    );
    out.push('');
  }
  if (record.stages !== null) {
    const snapMs = snapshotStageMs(record.stages);
    const rows = Object.entries(record.stages.deflateMs).map(([level, deflateMs]) => {
      const measuredRow = record.summary.find((s) => s.via === 'library' && s.level === Number(level) && s.writer === 'none' && s.reps > 0);
      const measuredMs = measuredRow === undefined ? NaN : (data.databases.reduce((n, d) => n + d.bytes, 0) / MIB / measuredRow.mibPerSecond) * 1000;
      const oneCore = snapMs + deflateMs;
      return [`level ${level}`, round(snapMs / 1000, 2), round(deflateMs / 1000, 2), round(oneCore / 1000, 2), round(measuredMs / 1000, 2), `${round(oneCore / measuredMs, 2)}×`];
    });
    out.push('## Deflate: one core vs every core');
    out.push('');
    out.push('One core: snapshot stages, then each image deflated as one zlib stream. The backup deflates 1 MiB blocks in parallel on the thread pool (src/archive/zip-writer.ts) while the worker copies out and hashes the image.');
    out.push('');
    out.push(table(['', 'snapshot stages s', 'deflate, one stream s', 'one core s', 'measured backup s', 'speed-up'], rows));
    out.push('');
  }
  const levelRows = record.summary.filter((s) => s.via === 'library' && s.writer === 'none' && s.reps > 0).sort((a, b) => a.level - b.level);
  const store = levelRows.find((s) => s.level === 0);
  if (store !== undefined && levelRows.length > 1) {
    out.push('## Choosing the default level');
    out.push('');
    out.push(
      'A download takes max(backup time, transfer time). Deflating only pays when the link is slower than the compressor; ' +
        'below that speed the smaller output wins. Store on a link of B MiB/s takes store output ÷ B; a level takes input ÷ its rate while the compressor is the bottleneck, so it wins on links slower than its rate × store output ÷ input (≈ its rate).',
    );
    out.push('');
    out.push(
      table(
        ['level', 'backup MiB/s', 'output MiB', 'ratio', 'CPU cores', 'beats store on links slower than'],
        levelRows.map((s) => {
          // storeOut / B = input / rate_L  =>  B = rate_L × storeOut / input = rate_L / store ratio.
          const breakEven = s.level === 0 ? NaN : s.mibPerSecond / store.compressionRatio;
          return [s.level, s.mibPerSecond, s.outputMib, `${s.compressionRatio}×`, s.cpuCores, s.level === 0 ? '–' : `${round(breakEven, 0)} MiB/s (${round(breakEven * 8.39, 0)} Mbit/s)`];
        }),
      ),
    );
    out.push('');
  }
  out.push('## How to read this');
  out.push('');
  out.push(
    [
      '- The peer is bench/peer.py, the simplest backup a user could write with Python\'s standard library (online backup into :memory:, serialize(), zipfile stored; no check, no hash, no fsync), run in the same repetitions as every other row, spawn to exit. "× peer" divides a row\'s MiB/s by the peer\'s with the same writer.',
      '- MiB/s = database bytes in the manifest ÷ wall time of the backup (the library: createBackup() to the last byte written to a file; the CLI: spawn to exit, so Node start-up and its fsync are included, and it is compared with the copy+fsync ceiling; HTTP: request to last byte, the client writing a file in the bench parent).',
      '- Each backup runs in a fresh process; peak RSS is that process\'s maxRSS (library rows: a bench child holding only dbzip; CLI rows: the real CLI). "RSS / largest db" divides by the largest database.',
      '- Loop worst = monitorEventLoopDelay (10 ms resolution) max in the process running the backup. For the CLI it includes module loading at start-up.',
      '- Temp bytes: TMPDIR (and SQLITE_TMPDIR) point at an empty folder watched with inotify and /proc/<pid>/fd from the parent; "other bytes written" = write() bytes of the process beyond the zip (/proc/self/io wchar).',
      '- The writer is a separate process committing 2-row transactions (trimming the oldest pair past 20 000) (synchronous=' + String(record.args.writerSync) + ') on the largest database of that journal mode; "alone" is the window just before the backup, "during" the backup itself. All pairs are "alone → during". The CPU the backup takes shows as a smaller writer CPU share; any other effect (lock waits, dearer commits) as fewer commits per second of the writer\'s own CPU. The worst commit is broken down into its own CPU time, voluntary context switches (sleeping: a busy wait on a lock, or I/O) and involuntary ones (preempted by other work). Machine CPU idle is /proc/stat idle + iowait over all cores.',
    ].join('\n'),
  );
  out.push('');
  out.push('## Targets (issues #4 and #11)');
  out.push('');
  out.push(table(['target', 'goal', 'measured', 'status'], record.targets.map((t) => [t.name, t.goal, t.measured, t.status === 'met' ? 'met' : t.status === 'missed' ? '**missed**' : 'n/a'])));
  out.push('');
  for (const profile of record.profiles) {
    out.push(`## CPU profile: ${profile.label}`);
    out.push('');
    for (const thread of profile.threads) {
      out.push(`${thread.thread} (${round(thread.totalMs, 0)} ms sampled):`);
      out.push('');
      out.push(table(['self ms', '%', 'function', 'where'], thread.top.map((f) => [round(f.selfMs, 0), round(f.percent, 1), f.name, f.where])));
      out.push('');
    }
  }
  return `${out.join('\n')}\n`;
}

export function writeRecord(dir: string, record: BenchRecord): { json: string; md: string } {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = record.date.replace(/:/g, '').replace(/\.\d+Z$/, 'Z');
  const json = path.join(dir, `${stamp}.json`);
  const md = path.join(dir, `${stamp}.md`);
  fs.writeFileSync(json, `${JSON.stringify(record, null, 2)}\n`);
  fs.writeFileSync(md, renderMarkdown(record));
  return { json, md };
}
