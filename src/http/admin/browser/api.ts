/** The `error` of a JSON error answer (src/http/error-status.ts). */
interface ApiError {
  code?: string;
  message?: string;
  problems?: string[];
}

/** A JSON answer: the body when the status is 2xx and the body is JSON; status 0 when the request never reached the server. */
type Answer<T> = { ok: true; status: number; body: T } | { ok: false; status: number; error: ApiError | null };

/** One JSON route, with the session cookie. Never throws: a network failure is `{ ok: false, status: 0 }` with error NETWORK. */
async function callJson<T>(method: string, url: string, init: { body?: Blob; contentType?: string } = {}): Promise<Answer<T>> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (init.contentType !== undefined) headers['Content-Type'] = init.contentType;
  let response: Response;
  try {
    response = await fetch(url, { method, headers, credentials: 'same-origin', ...(init.body === undefined ? {} : { body: init.body }) });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, status: 0, error: { code: 'NETWORK', message: 'The request did not reach the server (' + reason + ').' } };
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok && body !== null) return { ok: true, status: response.status, body: body as T };
  const error = typeof body === 'object' && body !== null && 'error' in body ? (body as { error: ApiError }).error : null;
  return { ok: false, status: response.status, error };
}

/** The error code of a failed answer: the server's, else `HTTP <status>`, else NETWORK. */
const errorCode = (error: ApiError | null, status: number): string => (error && error.code ? error.code : status === 0 ? 'NETWORK' : 'HTTP ' + status);

/**
 * A failed request in a card's alert box: the title, the server's message (or each problem it listed),
 * that nothing changed when that is certain, and the error code.
 */
function showProblem(box: HTMLElement, title: string, error: ApiError | null, status: number, nothingChanged = false): void {
  const code = errorCode(error, status);
  const message = error && error.message ? error.message : 'The server answered with status ' + status + '.';
  const listed = error && Array.isArray(error.problems) ? error.problems : message.split('\n').filter((l) => l.startsWith('- ')).map((l) => l.slice(2));
  const parts: Child[] = [el('strong', { text: title })];
  if (listed.length > 1) {
    parts.push(el('span', { text: plural(listed.length, 'problem') + ':' }));
    parts.push(el('ul', { class: 'problems' }, listed.map((p) => el('li', { text: p }))));
  } else {
    parts.push(el('span', { class: 'message', text: message }));
  }
  if (nothingChanged) parts.push(el('span', { text: 'Nothing in the data directory was changed.' }));
  // A 2xx here is a report that failed its own check (verify): no error code to show.
  if (status < 200 || status > 299) parts.push(el('span', { class: 'code', text: 'Error code ' + code + (status ? ' (HTTP ' + status + ')' : '') }));
  box.replaceChildren(...parts);
  box.hidden = false;
}

/** What a restore answer (POST api/restore, api/pre-restore/<name>/restore, api/backups/<name>/restore) carries that the page shows. */
interface RestoreBody {
  applied: boolean;
  mode: string;
  exact: boolean;
  uploadBytes: number;
  verify: { databases: unknown[]; assets: number };
  version: { archive: string; comparison: string; reason: string };
  plan: { items: PlanItem[]; summary: Record<PlanAction, number> };
  preRestore: string | null;
  notes: string[];
  durationMs: number;
}
type PlanAction = 'added' | 'replaced' | 'unchanged' | 'removed' | 'kept';
interface PlanItem {
  kind: string;
  path: string;
  action: PlanAction;
  bytes: number;
}

/** In the order a plan is told. */
const ACTIONS: readonly PlanAction[] = ['replaced', 'added', 'removed', 'unchanged', 'kept'];
/** The actions that change a file. */
const CHANGES: readonly PlanAction[] = ['replaced', 'added', 'removed'];

const RESTORE_TITLES: Record<string, string> = {
  ARCHIVE_INVALID: 'The backup did not pass the check',
  RESTORE_REFUSED: 'Restore refused',
  RESTORE_FAILED: 'The restore failed',
  PAYLOAD_TOO_LARGE: 'The file is too large',
  BUSY: 'Busy: another restore is running',
  UNAUTHORIZED: 'Sign in again',
  FORBIDDEN: 'Refused',
  INVALID_OPTION: 'The request was refused',
  DATA_DIR_NOT_FOUND: 'The data directory is missing',
};
/** Codes a restore answers before it changes anything. */
const UNCHANGED_ON = ['ARCHIVE_INVALID', 'RESTORE_REFUSED', 'PAYLOAD_TOO_LARGE', 'BUSY', 'UNAUTHORIZED', 'FORBIDDEN', 'INVALID_OPTION'];

/** A failed restore (or its dry run), whichever card asked. */
function showRestoreProblem(box: HTMLElement, error: ApiError | null, status: number): void {
  const code = errorCode(error, status);
  showProblem(box, RESTORE_TITLES[code] || 'The restore could not be done', error, status, UNCHANGED_ON.includes(code));
}

const changedItems = (body: RestoreBody): PlanItem[] => body.plan.items.filter((i) => CHANGES.includes(i.action));
const changeCount = (body: RestoreBody): number => CHANGES.reduce((n, a) => n + body.plan.summary[a], 0);
