import { PassThrough, type Readable } from 'node:stream';
import { openStore, type ResolvedStoreOptions } from './open.js';
import type { BackupStore, PutOptions, StoredBackup } from './store.js';
import { displayLocation } from './url.js';

/**
 * A store opened on first use. createApp is synchronous while reading an S3 credentials file is not,
 * so a missing credential surfaces as STORE_DENIED on the first request or run (the CLI opens its
 * store before serving, so `dbzip serve` fails at start instead).
 */
export function deferredStore(resolved: ResolvedStoreOptions): BackupStore {
  let opened: Promise<BackupStore> | undefined;
  const open = (): Promise<BackupStore> => {
    opened ??= openStore(resolved);
    // A failed open is retried next time (a credentials file may appear later).
    opened.catch(() => {
      opened = undefined;
    });
    return opened;
  };
  const { location, env } = resolved;
  const endpoint = location.kind === 's3' ? (location.endpoint ?? (env['AWS_ENDPOINT_URL_S3'] || env['AWS_ENDPOINT_URL'] || undefined)) : undefined;
  return {
    kind: location.kind,
    display: location.kind === 's3' ? displayLocation({ ...location, endpoint }) : displayLocation(location),
    put: async (name: string, body: Readable, options?: PutOptions) => {
      try {
        return await (await open()).put(name, body, options);
      } catch (error) {
        body.destroy();
        throw error;
      }
    },
    list: async (): Promise<StoredBackup[]> => (await open()).list(),
    stat: async (name: string) => (await open()).stat(name),
    get: async (name: string, signal?: AbortSignal) => (await open()).get(name, signal),
    getRange(name: string, start: number, end: number): Readable {
      const out = new PassThrough();
      open().then(
        (store) => store.getRange(name, start, end).once('error', (error) => out.destroy(error)).pipe(out),
        (error: unknown) => out.destroy(error as Error),
      );
      return out;
    },
    delete: async (name: string) => (await open()).delete(name),
    close(): void {
      void opened?.then((store) => store.close(), () => {});
    },
  };
}
