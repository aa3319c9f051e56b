/** The snapshot worker thread's entry: each request of its session (session.ts) is handled by requests.ts. */
import { parentPort } from 'node:worker_threads';
import { handle, reset } from './requests.js';
import type { Request, Response } from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('snapshot-worker must run in a worker thread');

port.on('message', (request: Request) => {
  try {
    const { response, transfer } = handle(request);
    port.postMessage(response, transfer);
  } catch (error) {
    port.postMessage({ id: request.id, type: 'crash', message: error instanceof Error ? error.message : String(error) } satisfies Response);
  }
});

port.on('close', reset);
