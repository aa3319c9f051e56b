/** Everything the CLI touches of its process, passed in by bin.ts so tests can run it in-process. */
export interface CliOutput {
  write(chunk: string | Uint8Array): boolean;
  once(event: 'drain', listener: () => void): unknown;
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
