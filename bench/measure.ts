/**
 * What the process running a backup measures about itself: the event loop's worst delay,
 * peak RSS, CPU time and bytes written. Runs inside the measured process (bench child, or the
 * CLI via probe.ts), as plain JavaScript, and keeps its own cost to a 10 ms timer: temp files
 * are watched from the parent (tempfiles.ts), which is idle while a backup runs.
 */
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface ProcessMeasures {
  /** Monotonic clock (shared across processes), ms. */
  startMs: number;
  endMs: number;
  /** Worst and 99th-percentile event loop delay while measuring, ms (10 ms resolution timer). */
  loopDelayMaxMs: number;
  loopDelayP99Ms: number;
  /** process.resourceUsage().maxRSS: the process's peak since it started. */
  peakRssBytes: number;
  /** RSS when measuring began: the harness's own share. */
  rssAtStartBytes: number;
  /** /proc/self/io deltas: bytes passed to write() and bytes sent to storage. */
  wcharBytes: number | null;
  storageWriteBytes: number | null;
  cpuUserMs: number;
  cpuSystemMs: number;
}

export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

function readProcIo(): { wchar: number; writeBytes: number } | null {
  try {
    const text = fs.readFileSync('/proc/self/io', 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { wchar: field('wchar'), writeBytes: field('write_bytes') };
  } catch {
    return null;
  }
}

export interface Measurement {
  stop(): ProcessMeasures;
}

export function startMeasuring(): Measurement {
  const startMs = monotonicMs();
  const rssAtStartBytes = process.memoryUsage.rss();
  const usage0 = process.resourceUsage();
  const io0 = readProcIo();
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return {
    stop() {
      histogram.disable();
      const endMs = monotonicMs();
      const usage = process.resourceUsage();
      const io = readProcIo();
      return {
        startMs,
        endMs,
        loopDelayMaxMs: Math.round(histogram.max / 1e4) / 100,
        loopDelayP99Ms: Math.round(histogram.percentile(99) / 1e4) / 100,
        peakRssBytes: usage.maxRSS * 1024,
        rssAtStartBytes,
        wcharBytes: io && io0 ? io.wchar - io0.wchar : null,
        storageWriteBytes: io && io0 ? io.writeBytes - io0.writeBytes : null,
        cpuUserMs: Math.round((usage.userCPUTime - usage0.userCPUTime) / 1000),
        cpuSystemMs: Math.round((usage.systemCPUTime - usage0.systemCPUTime) / 1000),
      };
    },
  };
}
