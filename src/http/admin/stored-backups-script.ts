/**
 * The "Stored backups" card's script (part of the page's one inline script, see script.ts). It does
 * nothing on a page without the card. Everything goes through the JSON routes with the session
 * cookie: GET api/backups to fill the card; POST api/backups for "Back up now", then GET again each
 * second until the run is over; POST api/backups/<name>/verify; POST …/restore?dryRun=1, then
 * "Restore now" without dryRun; DELETE api/backups/<name> after confirm(). Download is a plain link.
 *
 * Plain ES2020 in a string, no template literals inside, no DOM types needed.
 */
export const STORED_SCRIPT = `
(() => {
  'use strict';
  const where = document.getElementById('stored-where');
  if (!where) return;
  const url = where.getAttribute('data-url');
  const last = document.getElementById('stored-last');
  const runButton = document.getElementById('stored-run');
  const table = document.getElementById('stored-table');
  const list = document.getElementById('stored-list');
  const empty = document.getElementById('stored-empty');
  const status = document.getElementById('stored-status');
  const problem = document.getElementById('stored-error');
  const result = document.getElementById('stored-result');
  let polling = 0;

  const el = (tag, props, children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  };
  const size = (bytes) => {
    if (bytes < 1024) return bytes + ' bytes';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return value.toFixed(value < 10 ? 1 : 0) + ' ' + units[unit];
  };
  const when = (iso) => new Date(iso).toLocaleString();
  const say = (text, state) => {
    status.textContent = text;
    status.className = 'status' + (state ? ' ' + state : '');
  };
  const fail = (title, body) => {
    problem.replaceChildren(el('strong', { text: title }), el('span', { text: (body && body.error && body.error.message) || 'request failed' }));
    for (const p of (body && body.error && body.error.problems) || []) problem.append(el('span', { text: p }));
    problem.hidden = false;
    say('', '');
  };
  const call = async (method, path) => {
    const response = await fetch(path, { method, credentials: 'same-origin', headers: { Accept: 'application/json' } });
    const body = await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, body };
  };
  const nameUrl = (name) => url + '/' + encodeURIComponent(name);

  const describeRun = (run) => {
    if (!run) return 'No backup has run since the server started.';
    const base = 'Last run (' + run.trigger + ', ' + when(run.startedAt) + '): ';
    if (run.outcome === 'ok') return base + 'ok, ' + run.name + ', ' + size(run.bytes) + (run.removed.length ? ', removed ' + run.removed.length + ' old' : '') + '.';
    return base + 'FAILED: ' + (run.error ? run.error.message : 'unknown error');
  };

  const render = (data) => {
    const schedule = data.schedule
      ? 'Schedule ' + data.schedule.cron + ' (' + data.schedule.timezone + '), next run ' + (data.schedule.nextRun ? when(data.schedule.nextRun) : 'none') + '.'
      : 'No schedule: backups are made with Back up now.';
    const keep = data.retention ? ' Keeps the ' + data.retention.keep + ' newest' + (data.retention.keepDays ? ' and those younger than ' + data.retention.keepDays + ' days' : '') + '.' : '';
    where.textContent = 'Store: ' + data.store + '. ' + schedule + keep;
    last.textContent = data.running ? 'A backup is running (started ' + when(data.running.startedAt) + ')\\u2026' : describeRun(data.lastRun);
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
          el('td', {}, [el('span', { class: 'name', text: backup.name }), el('br'), el('span', { class: 'hint', text: when(backup.time) })]),
          el('td', { class: 'num', text: size(backup.size) }),
          el('td', {}, [el('div', { class: 'actions' }, [download, verify, restore, remove])]),
        ]),
      );
    }
    table.hidden = data.backups.length === 0;
    empty.hidden = data.backups.length !== 0;
  };

  const refresh = async () => {
    const answer = await call('GET', url);
    if (!answer.ok) {
      fail('Cannot list the stored backups', answer.body);
      return null;
    }
    render(answer.body);
    return answer.body;
  };

  const poll = () => {
    clearTimeout(polling);
    polling = setTimeout(async () => {
      const data = await refresh();
      if (data && data.running) poll();
      else if (data && data.lastRun) say(data.lastRun.outcome === 'ok' ? 'Backup stored: ' + data.lastRun.name : 'The backup failed.', data.lastRun.outcome === 'ok' ? 'done' : '');
    }, 1000);
  };

  runButton.addEventListener('click', async () => {
    problem.hidden = true;
    runButton.disabled = true;
    say('Backing up into the store\\u2026', 'busy');
    const answer = await call('POST', url);
    if (answer.status !== 202) {
      runButton.disabled = false;
      fail(answer.status === 429 ? 'Busy: a backup is already running' : 'Back up now failed', answer.body);
      return;
    }
    poll();
  });

  const showRestorePlan = (name, plan) => {
    const counts = plan.plan.summary;
    const lines = ['replaced', 'added', 'removed', 'unchanged', 'kept'].filter((k) => counts[k] > 0).map((k) => el('li', { text: counts[k] + ' ' + k }));
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
      say('', '');
    });
    confirmButton.addEventListener('click', async () => {
      confirmButton.disabled = true;
      say('Restoring ' + name + '\\u2026', 'busy');
      const answer = await call('POST', nameUrl(name) + '/restore');
      if (!answer.ok) {
        fail('The restore failed', answer.body);
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
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const name = button.getAttribute('data-name');
    const action = button.getAttribute('data-action');
    problem.hidden = true;
    result.hidden = true;
    if (action === 'delete') {
      if (!window.confirm('Delete ' + name + ' from the store? This cannot be undone.')) return;
      const answer = await call('DELETE', nameUrl(name));
      if (!answer.ok) return fail('Delete failed', answer.body);
      say('Deleted ' + name + '.', 'done');
      await refresh();
    } else if (action === 'verify') {
      say('Verifying ' + name + ' in the store\\u2026', 'busy');
      const answer = await call('POST', nameUrl(name) + '/verify');
      if (!answer.ok) return fail('Verify failed', answer.body);
      if (answer.body.ok) say(name + ' is ok: ' + answer.body.databases.length + ' database(s), every check passed.', 'done');
      else fail(name + ' did not pass the check', { error: { message: answer.body.problems.length + ' problem(s)', problems: answer.body.problems } });
    } else if (action === 'restore') {
      say('Checking ' + name + ' (dry run: nothing changes)\\u2026', 'busy');
      const answer = await call('POST', nameUrl(name) + '/restore?dryRun=1');
      if (!answer.ok) return fail('The backup cannot be restored', answer.body);
      say('Dry run done: nothing has changed yet.', 'done');
      showRestorePlan(name, answer.body);
    }
  });

  refresh().then((data) => {
    if (data && data.running) poll();
  });
})();
`;
