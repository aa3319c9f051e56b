import { formatBytes } from '../../format.js';

/**
 * The restore card's script (part of the page's one inline script, see script.ts):
 *
 * 1. "Check backup" posts the chosen file itself as the body of `api/restore?dryRun=1` with fetch()
 *    (the browser streams it from disk; the server spools it into the data directory's .dbzip/ and
 *    removes it afterwards), then shows the plan: the version comparison and, per file, added /
 *    replaced / unchanged / removed / kept.
 * 2. "Restore now" posts the same file again without dryRun, with the options the plan was made
 *    with, and shows the report: the pre-restore backup that undoes it and the counts.
 * 3. Any error is shown with every problem the server listed.
 *
 * Plain ES2020 in a string, no template literals inside (this is one), no DOM types needed. Sizes are
 * formatted by the server's own formatBytes (its source is embedded), so page and CLI read alike.
 */

export const RESTORE_SCRIPT = `
(() => {
  'use strict';
  const form = document.getElementById('restore-form');
  const status = document.getElementById('restore-status');
  const problem = document.getElementById('restore-error');
  const result = document.getElementById('restore-result');
  if (!form || !status || !problem || !result) return;
  form.hidden = false;
  const fileInput = document.getElementById('restore-file');
  const modeInput = document.getElementById('restore-mode');
  const exactInput = document.getElementById('restore-exact');
  const url = form.getAttribute('data-url');
  const ACTIONS = ['replaced', 'added', 'removed', 'unchanged', 'kept'];
  const CHANGES = ['replaced', 'added', 'removed'];
  const KINDS = { database: 'Database', asset: 'Asset', version: 'VERSION file' };
  const TITLES = {
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
  const UNCHANGED_ON = ['ARCHIVE_INVALID', 'RESTORE_REFUSED', 'PAYLOAD_TOO_LARGE', 'BUSY', 'UNAUTHORIZED', 'FORBIDDEN', 'INVALID_OPTION'];
  let pending = null;

  const el = (tag, props, children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  };
  const size = ${formatBytes.toString()};
  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many || one + 's');
  const say = (text, state) => {
    status.textContent = text;
    status.className = 'status' + (state ? ' ' + state : '');
  };
  const busy = (on) => {
    for (const control of form.elements) control.disabled = on;
    for (const button of result.querySelectorAll('button')) button.disabled = on;
  };
  const clearResult = () => {
    pending = null;
    result.replaceChildren();
    result.hidden = true;
  };
  const showProblem = (error, status) => {
    const code = error && error.code ? error.code : 'HTTP ' + status;
    const message = error && error.message ? error.message : 'The server answered with status ' + status + '.';
    const lines = message.split('\\n');
    const listed = error && Array.isArray(error.problems) ? error.problems : lines.filter((l) => l.startsWith('- ')).map((l) => l.slice(2));
    const parts = [el('strong', { text: TITLES[code] || 'The restore could not be done' })];
    if (listed.length > 1) {
      parts.push(el('span', { text: plural(listed.length, 'problem') + ':' }));
      parts.push(el('ul', { class: 'problems' }, listed.map((p) => el('li', { text: p }))));
    } else {
      parts.push(el('span', { class: 'message', text: message }));
    }
    if (UNCHANGED_ON.includes(code)) parts.push(el('span', { text: 'Nothing in the data directory was changed.' }));
    parts.push(el('span', { class: 'code', text: 'Error code ' + code + (status ? ' (HTTP ' + status + ')' : '') }));
    problem.replaceChildren(...parts);
    problem.hidden = false;
    say('', '');
  };
  const summaryList = (summary) =>
    el('ul', { class: 'summary', 'aria-label': 'Summary' },
      ACTIONS.filter((a) => summary[a] > 0).map((a) => el('li', {}, [el('span', { class: 'tag ' + a, text: a }), ' ' + summary[a]])));
  const itemsTable = (items, caption) =>
    el('table', { class: 'stack plan' }, [
      el('caption', { class: 'sr-only', text: caption }),
      el('thead', {}, [el('tr', {}, [
        el('th', { scope: 'col', text: 'File' }),
        el('th', { scope: 'col', text: 'Kind' }),
        el('th', { scope: 'col', text: 'Action' }),
        el('th', { scope: 'col', class: 'num', text: 'Size' }),
      ])]),
      el('tbody', {}, items.map((item) => el('tr', {}, [
        el('td', { class: 'name', 'data-label': 'File', text: item.path }),
        el('td', { 'data-label': 'Kind', text: KINDS[item.kind] || item.kind }),
        el('td', { 'data-label': 'Action' }, [el('span', { class: 'tag ' + item.action, text: item.action })]),
        el('td', { class: 'num', 'data-label': 'Size', title: item.bytes.toLocaleString('en-US') + ' bytes', text: size(item.bytes) }),
      ]))),
    ]);
  const optionsLine = (body) => 'Mode ' + body.mode + (body.exact ? ', exact' : '') + ' \\u00b7 ' + plural(body.verify.databases.length, 'database') + ', ' + plural(body.verify.assets, 'asset file') + ' \\u00b7 ' + size(body.uploadBytes) + ' uploaded';

  const send = async (options) => {
    const target = new URL(url, location.href);
    target.searchParams.set('mode', options.mode);
    if (options.exact) target.searchParams.set('exact', '1');
    if (options.dryRun) target.searchParams.set('dryRun', '1');
    let response;
    try {
      response = await fetch(target.href, { method: 'POST', body: options.file, headers: { 'Content-Type': 'application/zip', Accept: 'application/json' }, credentials: 'same-origin' });
    } catch (error) {
      return { ok: false, status: 0, error: { code: 'NETWORK', message: 'The upload did not reach the server (' + (error && error.message ? error.message : String(error)) + '). Nothing was restored by this request.' } };
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (response.ok && body !== null) return { ok: true, body: body };
    return { ok: false, status: response.status, error: body && body.error ? body.error : null };
  };

  const showPlan = (body, options) => {
    const changes = CHANGES.reduce((n, a) => n + body.plan.summary[a], 0);
    const children = [
      el('h3', { id: 'restore-plan-title', text: 'The backup passed every check' }),
      el('p', { class: 'muted', text: options.file.name + ' \\u00b7 ' + optionsLine(body) }),
      el('p', { class: 'version', text: 'Version: ' + body.version.reason }),
      summaryList(body.plan.summary),
      itemsTable(body.plan.items, 'What a restore would do to each file'),
    ];
    const buttons = [];
    if (changes > 0) {
      children.push(el('p', { class: 'hint', text: 'Restore now saves the current data as a pre-restore backup first, then changes ' + plural(changes, 'file') + '.' }));
      const go = el('button', { class: 'button danger', type: 'button', text: 'Restore now' });
      go.addEventListener('click', () => restoreNow());
      buttons.push(go);
    } else {
      children.push(el('p', { class: 'done', text: 'Nothing to restore: the data directory already holds what this backup holds.' }));
    }
    const cancel = el('button', { class: 'button quiet', type: 'button', text: changes > 0 ? 'Cancel' : 'Close' });
    cancel.addEventListener('click', () => {
      clearResult();
      say('', '');
      fileInput.focus();
    });
    buttons.push(cancel);
    children.push(el('div', { class: 'actions' }, buttons));
    result.setAttribute('aria-labelledby', 'restore-plan-title');
    result.replaceChildren(...children);
    result.hidden = false;
    pending = changes > 0 ? options : null;
  };

  const showReport = (body) => {
    const changes = CHANGES.reduce((n, a) => n + body.plan.summary[a], 0);
    const changed = body.plan.items.filter((i) => CHANGES.includes(i.action));
    const children = [el('h3', { id: 'restore-report-title', text: body.applied ? 'Restored' : 'Nothing was changed' })];
    if (body.preRestore) {
      children.push(el('p', {}, ['The data before this restore was saved as ', el('code', { text: body.preRestore }), '; restoring that file undoes this restore.']));
    }
    children.push(el('p', { class: 'muted', text: optionsLine(body) + ' \\u00b7 ' + plural(changes, 'file') + ' changed in ' + (body.durationMs / 1000).toFixed(1) + '\\u00a0s' }));
    children.push(summaryList(body.plan.summary));
    if (changed.length > 0) children.push(itemsTable(changed, 'What the restore changed'));
    for (const note of body.notes) children.push(el('p', { class: 'hint', text: note }));
    const reload = el('a', { class: 'button quiet', href: location.pathname + location.search, text: 'Reload the page' });
    children.push(el('div', { class: 'actions' }, [reload]));
    result.setAttribute('aria-labelledby', 'restore-report-title');
    result.replaceChildren(...children);
    result.hidden = false;
  };

  const restoreNow = async () => {
    if (pending === null) return;
    const options = pending;
    pending = null;
    problem.hidden = true;
    busy(true);
    say('Restoring: uploading the backup again, checking it, saving the current data, then restoring\\u2026', 'busy');
    const answer = await send({ file: options.file, mode: options.mode, exact: options.exact, dryRun: false });
    busy(false);
    if (!answer.ok) {
      clearResult();
      showProblem(answer.error, answer.status);
      return;
    }
    say(answer.body.applied ? 'Restore complete.' : 'Nothing needed restoring.', 'done');
    showReport(answer.body);
  };

  form.addEventListener('change', () => {
    if (!result.hidden) clearResult();
    problem.hidden = true;
    say('', '');
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = fileInput.files && fileInput.files[0];
    if (!file) return;
    const options = { file: file, mode: modeInput.value, exact: exactInput.checked };
    clearResult();
    problem.hidden = true;
    busy(true);
    say('Uploading and checking ' + file.name + ' (' + size(file.size) + '): every entry, checksum and database is verified\\u2026', 'busy');
    const answer = await send({ file: options.file, mode: options.mode, exact: options.exact, dryRun: true });
    busy(false);
    if (!answer.ok) {
      showProblem(answer.error, answer.status);
      return;
    }
    say('', '');
    showPlan(answer.body, options);
    const heading = document.getElementById('restore-plan-title');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    }
  });
})();
`;
