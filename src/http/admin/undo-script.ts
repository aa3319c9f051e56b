import { formatBytes } from '../../format.js';

/**
 * The "Undo a restore" card's script (part of the page's one inline script, see script.ts): loads
 * `api/pre-restore`, lists each backup with Download (a plain link) and Restore. Restore posts
 * `api/pre-restore/<name>/restore?dryRun=1` (online), shows what would change, and "Restore now"
 * posts it again without dryRun; the report names the new pre-restore backup. Then the list reloads.
 *
 * Plain ES2020 in a string, no template literals inside (this is one), no DOM types needed.
 */
export const UNDO_SCRIPT = `
(() => {
  'use strict';
  const list = document.getElementById('undo-list');
  const status = document.getElementById('undo-status');
  const problem = document.getElementById('undo-error');
  const result = document.getElementById('undo-result');
  const forceRow = document.getElementById('undo-force-row');
  const force = document.getElementById('undo-force');
  if (!list || !status || !problem || !result || !forceRow || !force) return;
  const url = list.getAttribute('data-url');
  const size = ${formatBytes.toString()};
  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many || one + 's');
  const CHANGES = ['replaced', 'added', 'removed'];
  const el = (tag, props, children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  };
  const say = (text, state) => {
    status.textContent = text;
    status.className = 'status' + (state ? ' ' + state : '');
  };
  const showProblem = (error, code) => {
    const parts = [el('strong', { text: code === 'RESTORE_REFUSED' ? 'Restore refused' : 'The restore could not be done' })];
    parts.push(el('span', { class: 'message', text: error && error.message ? error.message : 'The server answered with status ' + code + '.' }));
    if (code !== 'RESTORE_FAILED' && code !== 'INTERNAL') parts.push(el('span', { text: 'Nothing in the data directory was changed.' }));
    problem.replaceChildren(...parts);
    problem.hidden = false;
    say('', '');
  };
  const post = async (name, dryRun) => {
    const target = new URL(url + '/' + encodeURIComponent(name) + '/restore', location.href);
    target.searchParams.set('mode', 'online');
    if (dryRun) target.searchParams.set('dryRun', '1');
    if (force.checked) target.searchParams.set('force', '1');
    let response;
    try {
      response = await fetch(target.href, { method: 'POST', headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    } catch (error) {
      return { ok: false, code: 'NETWORK', error: { message: 'The request did not reach the server. Nothing was restored by it.' } };
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (response.ok && body !== null) return { ok: true, body: body };
    const error = body && body.error ? body.error : null;
    return { ok: false, code: error && error.code ? error.code : 'HTTP ' + response.status, error: error };
  };
  const busy = (on) => {
    for (const button of document.querySelectorAll('#undo button')) button.disabled = on;
  };
  const changedItems = (body) => body.plan.items.filter((i) => CHANGES.includes(i.action));

  const check = async (name) => {
    problem.hidden = true;
    result.hidden = true;
    busy(true);
    say('Checking ' + name + ': every entry, checksum and database is verified\\u2026', 'busy');
    const answer = await post(name, true);
    busy(false);
    if (!answer.ok) {
      if (answer.code === 'RESTORE_REFUSED') forceRow.hidden = false;
      showProblem(answer.error, answer.code);
      return;
    }
    say('', '');
    const changed = changedItems(answer.body);
    const children = [
      el('h3', { id: 'undo-plan-title', text: 'Undo with ' + name }),
      el('p', { class: 'version', text: 'Version: ' + answer.body.version.reason }),
    ];
    if (changed.length === 0) {
      children.push(el('p', { class: 'done', text: 'Nothing to restore: the data directory already holds what this backup holds.' }));
    } else {
      children.push(el('ul', { class: 'changes' }, changed.map((i) => el('li', {}, [el('span', { class: 'tag ' + i.action, text: i.action }), ' ' + i.path + ' (' + size(i.bytes) + ')']))));
      children.push(el('p', { class: 'hint', text: 'Restore now saves the current data as a new pre-restore backup first, then changes ' + plural(changed.length, 'file') + '.' }));
      const go = el('button', { class: 'button danger', type: 'button', text: 'Restore now' });
      go.addEventListener('click', () => apply(name));
      children.push(el('div', { class: 'actions' }, [go]));
    }
    result.setAttribute('aria-labelledby', 'undo-plan-title');
    result.replaceChildren(...children);
    result.hidden = false;
  };

  const apply = async (name) => {
    problem.hidden = true;
    busy(true);
    say('Restoring ' + name + '\\u2026', 'busy');
    const answer = await post(name, false);
    busy(false);
    if (!answer.ok) {
      result.hidden = true;
      showProblem(answer.error, answer.code);
      return;
    }
    const body = answer.body;
    const children = [el('h3', { id: 'undo-report-title', text: body.applied ? 'Restored ' + name : 'Nothing was changed' })];
    if (body.preRestore) children.push(el('p', {}, ['The data before this was saved as ', el('code', { text: body.preRestore }), '.']));
    result.setAttribute('aria-labelledby', 'undo-report-title');
    result.replaceChildren(...children);
    result.hidden = false;
    say(body.applied ? 'Restore complete.' : 'Nothing needed restoring.', 'done');
    await load();
  };

  const load = async () => {
    let body = null;
    try {
      const response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      body = response.ok ? await response.json() : null;
    } catch (error) {
      body = null;
    }
    if (body === null) {
      list.replaceChildren(el('p', { class: 'empty', text: 'The list of pre-restore backups could not be loaded.' }));
      list.hidden = false;
      return;
    }
    if (body.backups.length === 0) {
      list.replaceChildren(el('p', { class: 'empty', text: 'No pre-restore backups yet: one is saved before every restore.' }));
      list.hidden = false;
      return;
    }
    const rows = body.backups.map((b) => {
      const download = el('a', { class: 'button quiet', href: url + '/' + encodeURIComponent(b.name), download: b.name, text: 'Download' });
      const restoreButton = el('button', { class: 'button quiet', type: 'button', text: 'Restore\\u2026', 'data-name': b.name });
      restoreButton.addEventListener('click', () => check(b.name));
      return el('tr', {}, [
        el('td', { class: 'name', 'data-label': 'Backup', text: b.name }),
        el('td', { 'data-label': 'Saved', text: b.createdAt.slice(0, 16).replace('T', ' ') + ' UTC' }),
        el('td', { class: 'num', 'data-label': 'Size', title: b.bytes.toLocaleString('en-US') + ' bytes', text: size(b.bytes) }),
        el('td', { class: 'row-actions', 'data-label': 'Actions' }, [download, ' ', restoreButton]),
      ]);
    });
    list.replaceChildren(el('table', { class: 'stack' }, [
      el('caption', { class: 'sr-only', text: 'Pre-restore backups, newest first' }),
      el('thead', {}, [el('tr', {}, [
        el('th', { scope: 'col', text: 'Backup' }),
        el('th', { scope: 'col', text: 'Saved' }),
        el('th', { scope: 'col', class: 'num', text: 'Size' }),
        el('th', { scope: 'col', text: '' }),
      ])]),
      el('tbody', {}, rows),
    ]));
    list.hidden = false;
  };
  void load();
})();
`;
