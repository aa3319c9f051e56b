/** What makes a written file survive a power cut: owned here, used by the CLI, restore and stores. */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';

/** fsync a folder so a rename or unlink in it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync each folder once. */
export async function fsyncDirs(dirs: Iterable<string>): Promise<void> {
  for (const dir of new Set(dirs)) await fsyncDir(dir);
}
