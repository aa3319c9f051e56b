/**
 * How far each of the page's downloads has got, by its `dl` token, so the page can show progress
 * (an estimate when the size is unknown) and say when the download is over: the browser's download
 * manager tells the page nothing. Kept in memory per app, for a minute after the download ends.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Backup } from '../backup.js';
import type { AppEnv, DownloadResult, RouteDeps } from './context.js';
import { errorResponse, PROTECTED_ERRORS, SECURITY } from './openapi.js';
import { DOWNLOAD_TOKEN_PATTERN } from './session.js';

type State = 'running' | DownloadResult['outcome'];

interface Entry {
  backup: Backup;
  sent: number;
  state: State;
  endedAt: number | undefined;
}

/** Finished entries are forgotten after this long; at most MAX_ENTRIES are kept at all. */
const KEEP_MS = 60_000;
const MAX_ENTRIES = 200;

export interface DownloadProgressReport {
  state: State;
  /** Bytes handed to the connection so far. */
  bytes: number;
  /** The exact length (Content-Length), or null. */
  size: number | null;
  /** Without an exact length: the plan's input bytes, a guess at the total (deflate makes it smaller). */
  estimatedSize: number | null;
  /** Database and asset bytes read into the zip so far, of estimatedSize. */
  inputBytes: number;
}

export class DownloadProgress {
  readonly #entries = new Map<string, Entry>();

  /** Starts tracking a download; the returned functions report bytes sent and the end. */
  track(token: string, backup: Backup): { sent(bytes: number): void; end(outcome: DownloadResult['outcome']): void } {
    this.#sweep();
    const entry: Entry = { backup, sent: 0, state: 'running', endedAt: undefined };
    this.#entries.set(token, entry);
    return {
      sent: (bytes) => {
        entry.sent = bytes;
      },
      end: (outcome) => {
        entry.state = outcome;
        entry.endedAt = Date.now();
      },
    };
  }

  get(token: string): DownloadProgressReport | undefined {
    this.#sweep();
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    const { size, plan, progress } = entry.backup;
    return { state: entry.state, bytes: entry.sent, size, estimatedSize: size === null ? plan.inputBytes : null, inputBytes: progress.inputBytes };
  }

  #sweep(): void {
    const now = Date.now();
    for (const [token, entry] of this.#entries) if (entry.endedAt !== undefined && now - entry.endedAt > KEEP_MS) this.#entries.delete(token);
    // Insertion order is age order: drop the oldest beyond the cap.
    for (const token of this.#entries.keys()) {
      if (this.#entries.size <= MAX_ENTRIES) break;
      this.#entries.delete(token);
    }
  }
}

const progressRoute = (protect: MiddlewareHandler[]) =>
  createRoute({
    method: 'get',
    path: '/api/backup/progress',
    summary: "How far the page's download (GET /api/backup?dl=<token>) has got, and whether it is over",
    tags: ['backup'],
    middleware: protect,
    security: SECURITY,
    request: { query: z.strictObject({ dl: z.string().regex(DOWNLOAD_TOKEN_PATTERN, 'dl must be 8 to 32 letters or digits') }) },
    responses: {
      200: {
        description: 'state: running, ok (every byte handed over), aborted, stalled or failed',
        content: {
          'application/json': {
            schema: z.object({
              state: z.enum(['running', 'ok', 'aborted', 'stalled', 'failed']),
              bytes: z.number().int(),
              size: z.number().int().nullable(),
              estimatedSize: z.number().int().nullable(),
              inputBytes: z.number().int(),
            }),
          },
        },
      },
      400: errorResponse('Malformed token'),
      ...PROTECTED_ERRORS,
      404: errorResponse('No download with this token (not started, or over for more than a minute)'),
    },
  });

export function registerDownloadProgressRoute(app: OpenAPIHono<AppEnv>, deps: RouteDeps): void {
  app.openapi(progressRoute(deps.protect), (c) => {
    const report = deps.downloads.get(c.req.valid('query').dl);
    if (report === undefined) throw new HTTPException(404, { message: 'no download with this token' });
    return c.json(report, 200);
  });
}
