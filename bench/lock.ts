/**
 * One bench run at a time per bench-data folder: two runs would disturb each other's numbers, and
 * share the writer's databases. The lock file is refreshed every 10 s, so a lock left by a killed
 * run (or held by a process in another PID namespace, which we cannot probe) goes stale after 60 s.
 */
import fs from 'node:fs';
import path from 'node:path';

const HEARTBEAT_MS = 10_000;
const STALE_MS = 60_000;

export interface BenchLock {
  release(): void;
}

function isStale(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs > STALE_MS;
  } catch {
    return true;
  }
}

export async function acquireLock(dir: string, log: (line: string) => void): Promise<BenchLock> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'bench.lock');
  const owner = `${process.pid} ${new Date().toISOString()}`;
  let announced = false;
  for (;;) {
    try {
      fs.writeFileSync(file, owner, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (isStale(file)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      if (!announced) log(`waiting for another bench run to finish (${path.relative(process.cwd(), file)}: ${fs.readFileSync(file, 'utf8')})`);
      announced = true;
      await new Promise((resolve) => setTimeout(resolve, 5_000));
    }
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.utimesSync(file, now, now);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const release = () => {
    clearInterval(heartbeat);
    try {
      if (fs.readFileSync(file, 'utf8') === owner) fs.rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
  process.once('exit', release);
  return { release };
}
