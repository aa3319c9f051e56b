/**
 * Backups into the configured store: on a cron schedule (croner, the only importer) and on demand
 * (POST /api/backups). Runs never overlap: while one is going, a scheduled tick is skipped (logged)
 * and a manual one is refused (429). Every run takes a slot of the same limit as downloads. Each run
 * logs one line and its outcome is kept for the page, GET /api/backups and GET /api/health?details=1.
 */
import { Cron } from 'croner';
import { BusyError, DbzipError, OptionsError } from '../errors.js';
import type { BackupOptions, Logger } from '../options.js';
import { backupToStore, type StoreRunResult } from '../store/backup-to-store.js';
import type { BackupStore } from '../store/store.js';
import type { BackupSlots } from './limits.js';

export type RunTrigger = 'schedule' | 'manual';

/** One finished run, as kept and shown. */
export interface RunRecord {
  trigger: RunTrigger;
  outcome: 'ok' | 'failed';
  /** The backup's name (also for a failed run: the name it would have had). */
  name: string | null;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  bytes: number;
  /** Backups retention removed after this run. */
  removed: string[];
  /** Why it failed: the error's code and message. */
  error: { code: string; message: string } | null;
}

export interface StoredBackupsStatus {
  /** The store, as displayed (never a credential). */
  store: string;
  kind: 'folder' | 's3';
  /** True when new backups are age-encrypted (the server's `encrypt`): named `.zip.age`. */
  encrypted: boolean;
  schedule: { cron: string; timezone: string; nextRun: string | null } | null;
  retention: { keep: number; keepDays: number | null } | null;
  running: { trigger: RunTrigger; startedAt: string } | null;
  lastRun: RunRecord | null;
  lastSuccess: RunRecord | null;
  lastFailure: RunRecord | null;
  /** Scheduled ticks skipped because a run was still going or every slot was taken, since start. */
  skipped: number;
}

export interface ScheduleOption {
  /** Cron expression, 5 fields (minute first) or 6 (seconds first). */
  cron: string;
  /** IANA time zone the expression is read in. Default 'UTC'. */
  timezone?: string;
}

export interface StoredBackupsConfig {
  store: BackupStore;
  backup: Omit<BackupOptions, 'signal' | 'logger' | 'date'>;
  prefix: string;
  retention: { keep: number; keepDays?: number | undefined } | undefined;
  schedule: { cron: string; timezone: string } | undefined;
  slots: BackupSlots;
  logger: Logger;
}

/** Validates a schedule eagerly: a bad expression or zone fails createApp, not the first tick. */
export function checkSchedule(option: ScheduleOption | string): { cron: string; timezone: string } {
  const { cron, timezone = 'UTC' } = typeof option === 'string' ? { cron: option } : option;
  if (typeof cron !== 'string' || cron.trim() === '') throw new OptionsError('option "schedule.cron" must be a cron expression such as "0 3 * * *"');
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    throw new OptionsError(`option "schedule.timezone": ${JSON.stringify(timezone)} is not a time zone (use an IANA name such as Europe/Berlin, or UTC)`);
  }
  try {
    new Cron(cron.trim(), { paused: true, timezone }).stop();
  } catch (error) {
    throw new OptionsError(`option "schedule.cron": ${JSON.stringify(cron)} is not a cron expression: ${(error as Error).message}`);
  }
  return { cron: cron.trim(), timezone };
}

export class StoredBackups {
  readonly #config: StoredBackupsConfig;
  #job: Cron | undefined;
  #running: { trigger: RunTrigger; startedAt: Date; controller: AbortController; done: Promise<RunRecord> } | undefined;
  #lastRun: RunRecord | null = null;
  #lastSuccess: RunRecord | null = null;
  #lastFailure: RunRecord | null = null;
  #skipped = 0;
  #stopped = false;

  constructor(config: StoredBackupsConfig) {
    this.#config = config;
  }

  get store(): BackupStore {
    return this.#config.store;
  }

  /** Starts the schedule, if there is one. Its timer never keeps the process alive. */
  start(): void {
    const { schedule } = this.#config;
    if (schedule === undefined || this.#job !== undefined || this.#stopped) return;
    this.#job = new Cron(schedule.cron, { timezone: schedule.timezone, unref: true }, () => this.#tick());
  }

  #tick(): void {
    try {
      void this.run('schedule').catch(() => {});
    } catch (error) {
      // Busy: this tick is skipped, and says so; the next one tries again.
      this.#skipped += 1;
      this.#config.logger.warn(
        { event: 'stored-backup', trigger: 'schedule', outcome: 'skipped', store: this.#config.store.display, reason: (error as Error).message },
        'scheduled backup skipped',
      );
    }
  }

  /**
   * Starts a run now and returns its promise (which never rejects: the outcome is in the record).
   * Throws BusyError at once when a run is going or every backup slot is taken.
   */
  run(trigger: RunTrigger): Promise<RunRecord> {
    if (this.#stopped) throw new DbzipError('ABORTED', 'the server is stopping');
    if (this.#running !== undefined) {
      throw new BusyError(`a backup into the store is already running (started ${this.#running.startedAt.toISOString()} by ${this.#running.trigger})`, 60);
    }
    const release = this.#config.slots.acquire();
    const controller = new AbortController();
    const startedAt = new Date();
    const done = this.#execute(trigger, startedAt, controller.signal).finally(() => {
      release();
      this.#running = undefined;
    });
    this.#running = { trigger, startedAt, controller, done };
    return done;
  }

  async #execute(trigger: RunTrigger, startedAt: Date, signal: AbortSignal): Promise<RunRecord> {
    const { store, logger, prefix } = this.#config;
    let result: StoreRunResult | undefined;
    let error: DbzipError | undefined;
    try {
      result = await backupToStore({ backup: this.#config.backup, store, prefix, retention: this.#config.retention, signal, logger, now: () => startedAt });
    } catch (caught) {
      error = caught instanceof DbzipError ? caught : new DbzipError('STORE_FAILED', caught instanceof Error ? caught.message : String(caught), { cause: caught });
    }
    const finishedAt = new Date();
    const record: RunRecord = {
      trigger,
      outcome: error === undefined ? 'ok' : 'failed',
      name: result?.name ?? null,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      bytes: result?.bytes ?? 0,
      removed: result?.retention?.removed ?? [],
      error: error === undefined ? null : { code: error.code, message: error.message },
    };
    this.#lastRun = record;
    if (error === undefined) this.#lastSuccess = record;
    else this.#lastFailure = record;
    const line = { event: 'stored-backup', store: store.display, ...record, ...(result?.retention?.failed.length ? { pruneFailed: result.retention.failed } : {}) };
    if (error === undefined) logger.info(line, 'stored backup');
    else logger.error(line, 'stored backup failed');
    return record;
  }

  status(): StoredBackupsStatus {
    const { schedule, retention, store } = this.#config;
    const next = this.#job?.nextRun() ?? null;
    return {
      store: store.display,
      kind: store.kind,
      encrypted: this.#config.backup.encrypt !== undefined,
      schedule: schedule === undefined ? null : { ...schedule, nextRun: next === null ? null : next.toISOString() },
      retention: retention === undefined ? null : { keep: retention.keep, keepDays: retention.keepDays ?? null },
      running: this.#running === undefined ? null : { trigger: this.#running.trigger, startedAt: this.#running.startedAt.toISOString() },
      lastRun: this.#lastRun,
      lastSuccess: this.#lastSuccess,
      lastFailure: this.#lastFailure,
      skipped: this.#skipped,
    };
  }

  /** Stops the schedule; a running backup is cancelled (its upload aborted) and awaited. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#job?.stop();
    const running = this.#running;
    if (running !== undefined) {
      running.controller.abort(new Error('the server is stopping'));
      await running.done;
    }
    this.#config.store.close();
  }
}
