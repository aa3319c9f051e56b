/**
 * `dbzip backup -o <file>` writes `<file>.dbzip-<host>-<pid>-<start>.partial` and renames it when done.
 * The name says which process writes it, so a later run can tell the partial of a run that was killed
 * (SIGKILL, power loss: nothing of it can clean up) from one that is still being written, and remove
 * only the first kind. A process is identified by its pid and its start time (in clock ticks since boot,
 * from /proc), because pids are reused; where /proc is missing the start time is 0 and a pid that exists
 * counts as running. The host part keeps a run from judging partials of another machine's runs in a
 * shared folder: those are never removed.
 */
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PARTIAL = /^(.+)\.dbzip-([A-Za-z0-9]{1,32})-(\d+)-(\d+)\.partial$/;

const hostTag = (): string => os.hostname().replace(/[^A-Za-z0-9]/g, '').slice(0, 32) || 'host';

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
function startTicks(pid: number | 'self'): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[22 - 3]);
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}

const ownTicks = startTicks('self') ?? 0;

/** The name this process writes `target` under until it is complete. */
export function partialName(target: string): string {
  return `${target}.dbzip-${hostTag()}-${process.pid}-${ownTicks}.partial`;
}

function isRunning(pid: number, ticks: number): boolean {
  if (pid === process.pid) return ticks === ownTicks;
  if (ticks !== 0) {
    const now = startTicks(pid);
    // Another process with that pid (started at another time) or none at all: the writer is gone.
    if (now !== undefined || ownTicks !== 0) return now === ticks;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it just belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StalePartial {
  file: string;
  pid: number;
}

/** Removes, in `dir`, the partial files of dbzip runs on this host whose process is gone. */
export async function removeStalePartials(dir: string): Promise<StalePartial[]> {
  const removed: StalePartial[] = [];
  const host = hostTag();
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return removed; // a missing folder fails later, when the partial is created, with a clearer message
  }
  for (const name of names) {
    const match = PARTIAL.exec(name);
    if (match === null || match[2] !== host) continue;
    const pid = Number(match[3]);
    if (isRunning(pid, Number(match[4]))) continue;
    const file = path.join(dir, name);
    // Only a regular file: never follow or remove a link or a folder that happens to match.
    const stat = await fs.lstat(file).catch(() => undefined);
    if (stat === undefined || !stat.isFile()) continue;
    await fs.rm(file, { force: true });
    removed.push({ file, pid });
  }
  return removed;
}
