/**
 * Watches the measured process's TMPDIR from the parent, so the watching costs the backup nothing.
 * A listing afterwards is not enough: SQLite unlinks its temp files as soon as it opens them.
 * So: inotify on the folder (fs.watch) catches any file created there, even if deleted at once,
 * and every 50 ms the process's open descriptors (/proc/<pid>/fd) are checked for files under it,
 * deleted or not, to record their size.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface TempWatch {
  /** Call once the process is known (the CLI and children are spawned after the watch starts). */
  track(pid: number | undefined): void;
  stop(): { bytes: number; files: string[] };
}

export function watchTemp(tmpDir: string): TempWatch {
  const root = path.resolve(tmpDir);
  const seen = new Map<string, number>();
  const watcher = fs.watch(root, (_event, name) => {
    if (name !== null) {
      const file = path.join(root, name);
      seen.set(file, Math.max(seen.get(file) ?? 0, fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0));
    }
  });
  let timer: NodeJS.Timeout | undefined;
  const sample = (pid: number) => {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      return; // gone, or no /proc
    }
    for (const fd of fds) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/ \(deleted\)$/, '');
        if (!target.startsWith(root)) continue;
        const size = fs.statSync(`/proc/${pid}/fd/${fd}`).size;
        seen.set(target, Math.max(seen.get(target) ?? 0, size));
      } catch {
        // closed between readdir and readlink
      }
    }
  };
  return {
    track(pid) {
      if (pid === undefined) return;
      timer = setInterval(() => sample(pid), 50);
    },
    stop() {
      clearInterval(timer);
      watcher.close();
      return { bytes: [...seen.values()].reduce((a, b) => a + b, 0), files: [...seen.keys()] };
    },
  };
}
