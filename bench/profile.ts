/**
 * Summarises the .cpuprofile files that `node --cpu-prof` writes (one per thread: the main thread
 * and the snapshot worker) into the functions with the most self time, so a slow stage has a name.
 */
import fs from 'node:fs';
import path from 'node:path';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfiledFunction {
  name: string;
  where: string;
  selfMs: number;
  percent: number;
}

export interface ProfileSummary {
  label: string;
  dir: string;
  threads: { thread: string; file: string; totalMs: number; top: ProfiledFunction[] }[];
}

function shortUrl(url: string, root: string): string {
  if (url === '') return '(native)';
  const file = url.startsWith('file://') ? new URL(url).pathname : url;
  return file.startsWith(root) ? path.relative(root, file) : file;
}

function summarizeFile(file: string, root: string, top: number): { totalMs: number; top: ProfiledFunction[] } {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { name: string; where: string; us: number }>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    // timeDeltas[i] is the time since the previous sample: charge it to this one.
    const us = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (node === undefined) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName === '' ? '(anonymous)' : functionName;
    const where = url === '' ? '' : `${shortUrl(url, root)}:${lineNumber + 1}`;
    const key = `${name}@${where}`;
    const entry = self.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    self.set(key, entry);
    totalUs += us;
  });
  const ranked = [...self.values()].sort((a, b) => b.us - a.us).slice(0, top);
  return {
    totalMs: totalUs / 1000,
    top: ranked.map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, percent: (e.us / Math.max(1, totalUs)) * 100 })),
  };
}

/** CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main thread. */
export function summarizeProfiles(label: string, dir: string, root: string, top = 12): ProfileSummary {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  return {
    label,
    dir,
    threads: files.map((f) => {
      const tid = f.split('.')[4] ?? '?';
      return { thread: tid === '0' ? 'main thread' : `worker thread ${tid}`, file: path.join(dir, f), ...summarizeFile(path.join(dir, f), root, top) };
    }),
  };
}
