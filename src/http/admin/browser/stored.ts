/**
 * The "Stored backups" card. It does nothing on a page without the card. Everything goes through the
 * JSON routes with the session cookie: GET api/backups to fill the card; POST api/backups for "Back up
 * now", then GET again each second until the run is over; POST api/backups/<name>/verify; POST
 * …/restore?dryRun=1, then "Restore now" without dryRun; DELETE api/backups/<name> after confirm().
 * Download is a plain link.
 */

/** One run in GET api/backups (src/http/stored-backups-route.ts). */
interface StoredRun {
  trigger: string;
  outcome: 'ok' | 'failed';
  name: string | null;
  startedAt: string;
  bytes: number;
  removed: string[];
  error: { code: string; message: string } | null;
}

/** GET api/backups. */
interface StoredList {
  store: string;
  /** New backups are age-encrypted to the server's recipients (named .zip.age). */
  encrypted: boolean;
  schedule: { cron: string; timezone: string; nextRun: string | null } | null;
  retention: { keep: number; keepDays: number | null } | null;
  running: { trigger: string; startedAt: string } | null;
  lastRun: StoredRun | null;
  backups: { name: string; size: number; time: string; encrypted: boolean }[];
}

/** POST api/backups/<name>/verify. */
interface StoredVerify {
  ok: boolean;
  problems: string[];
  databases: unknown[];
}

function storedCard(): void {
  const where = byId('stored-where', HTMLElement);
  const last = byId('stored-last', HTMLElement);
  const runButton = byId('stored-run', HTMLButtonElement);
  const table = byId('stored-table', HTMLElement);
  const list = byId('stored-list', HTMLElement);
  const empty = byId('stored-empty', HTMLElement);
  const status = byId('stored-status', HTMLElement);
  const problem = byId('stored-error', HTMLElement);
  const result = byId('stored-result', HTMLElement);
  if (!where || !last || !runButton || !table || !list || !empty || !status || !problem || !result) return;
  const url = where.getAttribute('data-url') || 'api/backups';
  const say = statusLine(status);
  let polling = 0;

  const when = (iso: string) => new Date(iso).toLocaleString();
  const fail = (title: string, error: ApiError | null, code: number) => {
    showProblem(problem, title, error, code);
    say('');
  };
  const nameUrl = (name: string) => url + '/' + encodeURIComponent(name);

  const describeRun = (run: StoredRun | null) => {
    if (!run) return 'No backup has run since the server started.';
    const base = 'Last run (' + run.trigger + ', ' + when(run.startedAt) + '): ';
    if (run.outcome === 'ok') return base + 'ok, ' + run.name + ', ' + formatBytes(run.bytes) + (run.removed.length ? ', removed ' + run.removed.length + ' old' : '') + '.';
    return base + 'FAILED: ' + (run.error ? run.error.message : 'unknown error');
  };

  const render = (data: StoredList) => {
    const schedule = data.schedule
      ? 'Schedule ' + data.schedule.cron + ' (' + data.schedule.timezone + '), next run ' + (data.schedule.nextRun ? when(data.schedule.nextRun) : 'none') + '.'
      : 'No schedule: backups are made with Back up now.';
    const keep = data.retention ? ' Keeps the ' + data.retention.keep + ' newest' + (data.retention.keepDays ? ' and those younger than ' + data.retention.keepDays + ' days' : '') + '.' : '';
    // Encryption is the server's setting (--encrypt-to): the page says so, it never chooses.
    const sealed = data.encrypted ? ' New backups are encrypted with age (.zip.age); the server verifies and restores them with its identity file.' : '';
    where.textContent = 'Store: ' + data.store + '. ' + schedule + keep + sealed;
    last.textContent = data.running ? 'A backup is running (started ' + when(data.running.startedAt) + ')\u2026' : describeRun(data.lastRun);
    runButton.hidden = false;
    runButton.disabled = data.running !== null;
    list.replaceChildren();
    for (const backup of data.backups) {
      const download = el('a', { class: 'button quiet', href: nameUrl(backup.name), download: backup.name, text: 'Download' });
      const verify = el('button', { class: 'button quiet', type: 'button', 'data-action': 'verify', text: 'Verify' });
      const restore = el('button', { class: 'button quiet', type: 'button', 'data-action': 'restore', text: 'Restore' });
      const remove = el('button', { class: 'button quiet', type: 'button', 'data-action': 'delete', text: 'Delete' });
      for (const button of [verify, restore, remove]) button.setAttribute('data-name', backup.name);
      list.append(
        el('tr', { 'data-name': backup.name }, [
          el('td', {}, [el('span', { class: 'name', text: backup.name }), el('br'), el('span', { class: 'hint', text: when(backup.time) + (backup.encrypted ? ' \u00b7 encrypted (age)' : '') })]),
          el('td', { class: 'num', text: formatBytes(backup.size) }),
          el('td', {}, [el('div', { class: 'actions' }, [download, verify, restore, remove])]),
        ]),
      );
    }
    table.hidden = data.backups.length === 0;
    empty.hidden = data.backups.length !== 0;
  };

  const refresh = async (): Promise<StoredList | null> => {
    const answer = await callJson<StoredList>('GET', url);
    if (!answer.ok) {
      fail('Cannot list the stored backups', answer.error, answer.status);
      return null;
    }
    render(answer.body);
    return answer.body;
  };

  const poll = () => {
    clearTimeout(polling);
    polling = window.setTimeout(async () => {
      const data = await refresh();
      if (data && data.running) poll();
      else if (data && data.lastRun) say(data.lastRun.outcome === 'ok' ? 'Backup stored: ' + data.lastRun.name : 'The backup failed.', data.lastRun.outcome === 'ok' ? 'done' : '');
    }, 1000);
  };

  runButton.addEventListener('click', async () => {
    problem.hidden = true;
    runButton.disabled = true;
    say('Backing up into the store\u2026', 'busy');
    const answer = await callJson<unknown>('POST', url);
    if (!answer.ok || answer.status !== 202) {
      runButton.disabled = false;
      fail(answer.status === 429 ? 'Busy: a backup is already running' : 'Back up now failed', answer.ok ? null : answer.error, answer.status);
      return;
    }
    poll();
  });

  const showRestorePlan = (name: string, plan: RestoreBody) => {
    const counts = plan.plan.summary;
    const lines = ACTIONS.filter((k) => counts[k] > 0).map((k) => el('li', { text: counts[k] + ' ' + k }));
    const confirmButton = el('button', { class: 'button danger', type: 'button', id: 'stored-restore-now', text: 'Restore now' });
    const cancel = el('button', { class: 'button quiet', type: 'button', text: 'Cancel' });
    result.replaceChildren(
      el('p', { text: 'Checked ' + name + ': version ' + plan.version.archive + ' (' + plan.version.comparison + '). What a restore would do:' }),
      el('ul', { class: 'summary' }, lines),
      el('p', { class: 'hint', text: 'The current data is saved as a pre-restore backup first.' }),
      el('div', { class: 'actions' }, [confirmButton, cancel]),
    );
    result.hidden = false;
    cancel.addEventListener('click', () => {
      result.hidden = true;
      say('');
    });
    confirmButton.addEventListener('click', async () => {
      confirmButton.disabled = true;
      say('Restoring ' + name + '\u2026', 'busy');
      const answer = await callJson<RestoreBody>('POST', nameUrl(name) + '/restore');
      if (!answer.ok) {
        showRestoreProblem(problem, answer.error, answer.status);
        say('');
        return;
      }
      result.replaceChildren(
        el('p', { class: 'done', text: answer.body.applied ? 'Restored from ' + name + '.' : 'Nothing differed; nothing was changed.' }),
        el('p', { text: answer.body.preRestore ? 'Undo with the pre-restore backup ' + answer.body.preRestore + '.' : '' }),
      );
      say('Restore finished.', 'done');
    });
  };

  list.addEventListener('click', async (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
    if (!button) return;
    const name = button.getAttribute('data-name') || '';
    const action = button.getAttribute('data-action');
    problem.hidden = true;
    result.hidden = true;
    if (action === 'delete') {
      if (!window.confirm('Delete ' + name + ' from the store? This cannot be undone.')) return;
      const answer = await callJson<unknown>('DELETE', nameUrl(name));
      if (!answer.ok) return fail('Delete failed', answer.error, answer.status);
      say('Deleted ' + name + '.', 'done');
      await refresh();
    } else if (action === 'verify') {
      say('Verifying ' + name + ' in the store\u2026', 'busy');
      const answer = await callJson<StoredVerify>('POST', nameUrl(name) + '/verify');
      if (!answer.ok) return fail('Verify failed', answer.error, answer.status);
      if (answer.body.ok) say(name + ' is ok: ' + plural(answer.body.databases.length, 'database') + ', every check passed.', 'done');
      else fail(name + ' did not pass the check', { message: plural(answer.body.problems.length, 'problem'), problems: answer.body.problems }, answer.status);
    } else if (action === 'restore') {
      say('Checking ' + name + ' (dry run: nothing changes)\u2026', 'busy');
      const answer = await callJson<RestoreBody>('POST', nameUrl(name) + '/restore?dryRun=1');
      if (!answer.ok) {
        showRestoreProblem(problem, answer.error, answer.status);
        say('');
        return;
      }
      say('Dry run done: nothing has changed yet.', 'done');
      showRestorePlan(name, answer.body);
    }
  });

  void refresh().then((data) => {
    if (data && data.running) poll();
  });
}
