import { Writable } from 'node:stream';

/** Everything the CLI touches of its process, passed in by bin.ts so tests can run it in-process. */
export interface CliOutput {
  write(chunk: string | Uint8Array): boolean;
  once(event: 'drain', listener: () => void): unknown;
  /** A failed write (EPIPE, ENOSPC) arrives as 'error'; Node ends the process on one nobody listens for. */
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface CliIo {
  stdout: CliOutput;
  stderr: CliOutput;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Aborted by SIGINT / SIGTERM. */
  signal: AbortSignal;
}

/** Writes and waits for 'drain' when the output is full (backpressure). */
export async function writeAll(out: CliOutput, chunk: string | Uint8Array): Promise<void> {
  if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
}

/**
 * `out` as a Writable for `pipeline`: backpressure through 'drain', and the output's own error (EPIPE,
 * ENOSPC) fails the pipeline as soon as it arrives, instead of a wait for a 'drain' that never comes.
 */
export function toWritable(out: CliOutput): Writable {
  let waiting: ((error?: Error | null) => void) | undefined;
  const settle = (error?: Error) => {
    const callback = waiting;
    waiting = undefined;
    callback?.(error);
  };
  const onError = (error: Error) => {
    if (waiting !== undefined) settle(error);
    else sink.destroy(error);
  };
  const sink = new Writable({
    write(chunk: Uint8Array, _encoding, callback) {
      if (out.write(chunk)) return callback();
      waiting = callback;
      out.once('drain', () => settle());
    },
    // A stream reports a failed write on the next tick: give the last chunk's error a chance to arrive.
    final: (callback) => void setImmediate(callback),
    destroy(error, callback) {
      out.off('error', onError);
      callback(error);
    },
  });
  out.on('error', onError);
  return sink;
}
