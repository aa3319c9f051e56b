/**
 * The "Undo a restore" card: loads `api/pre-restore`, lists each backup with Download (a plain link)
 * and Restore. Restore posts `api/pre-restore/<name>/restore?dryRun=1` (online), shows what would
 * change, and "Restore now" posts it again without dryRun; the report names the new pre-restore
 * backup. Then the list reloads.
 */

/** GET api/pre-restore (src/http/pre-restore-route.ts). */
interface PreRestoreList {
  backups: { name: string; bytes: number; createdAt: string }[];
}

function undoCard(): void {
  const list = byId('undo-list', HTMLElement);
  const status = byId('undo-status', HTMLElement);
  const problem = byId('undo-error', HTMLElement);
  const result = byId('undo-result', HTMLElement);
  const forceRow = byId('undo-force-row', HTMLElement);
  const force = byId('undo-force', HTMLInputElement);
  if (!list || !status || !problem || !result || !forceRow || !force) return;
  const url = list.getAttribute('data-url') || 'api/pre-restore';
  const say = statusLine(status);

  const post = (name: string, dryRun: boolean) => {
    const target = new URL(url + '/' + encodeURIComponent(name) + '/restore', location.href);
    target.searchParams.set('mode', 'online');
    if (dryRun) target.searchParams.set('dryRun', '1');
    if (force.checked) target.searchParams.set('force', '1');
    return callJson<RestoreBody>('POST', target.href);
  };
  const busy = (on: boolean) => {
    for (const button of Array.from(document.querySelectorAll<HTMLButtonElement>('#undo button'))) button.disabled = on;
  };
  const fail = (error: ApiError | null, code: number) => {
    showRestoreProblem(problem, error, code);
    say('');
  };

  const check = async (name: string) => {
    problem.hidden = true;
    result.hidden = true;
    busy(true);
    say('Checking ' + name + ': every entry, checksum and database is verified\u2026', 'busy');
    const answer = await post(name, true);
    busy(false);
    if (!answer.ok) {
      if (errorCode(answer.error, answer.status) === 'RESTORE_REFUSED') forceRow.hidden = false;
      fail(answer.error, answer.status);
      return;
    }
    say('');
    const changed = changedItems(answer.body);
    const children: Child[] = [
      el('h3', { id: 'undo-plan-title', text: 'Undo with ' + name }),
      el('p', { class: 'version', text: 'Version: ' + answer.body.version.reason }),
    ];
    if (changed.length === 0) {
      children.push(el('p', { class: 'done', text: 'Nothing to restore: the data directory already holds what this backup holds.' }));
    } else {
      children.push(el('ul', { class: 'changes' }, changed.map((i) => el('li', {}, [el('span', { class: 'tag ' + i.action, text: i.action }), ' ' + i.path + ' (' + formatBytes(i.bytes) + ')']))));
      children.push(el('p', { class: 'hint', text: 'Restore now saves the current data as a new pre-restore backup first, then changes ' + plural(changed.length, 'file') + '.' }));
      const go = el('button', { class: 'button danger', type: 'button', text: 'Restore now' });
      go.addEventListener('click', () => void apply(name));
      children.push(el('div', { class: 'actions' }, [go]));
    }
    result.setAttribute('aria-labelledby', 'undo-plan-title');
    result.replaceChildren(...children);
    result.hidden = false;
  };

  const apply = async (name: string) => {
    problem.hidden = true;
    busy(true);
    say('Restoring ' + name + '\u2026', 'busy');
    const answer = await post(name, false);
    busy(false);
    if (!answer.ok) {
      result.hidden = true;
      fail(answer.error, answer.status);
      return;
    }
    const body = answer.body;
    const children: Child[] = [el('h3', { id: 'undo-report-title', text: body.applied ? 'Restored ' + name : 'Nothing was changed' })];
    if (body.preRestore) children.push(el('p', {}, ['The data before this was saved as ', el('code', { text: body.preRestore }), '.']));
    result.setAttribute('aria-labelledby', 'undo-report-title');
    result.replaceChildren(...children);
    result.hidden = false;
    say(body.applied ? 'Restore complete.' : 'Nothing needed restoring.', 'done');
    await load();
  };

  const load = async () => {
    const answer = await callJson<PreRestoreList>('GET', url);
    if (!answer.ok) {
      list.replaceChildren(el('p', { class: 'empty', text: 'The list of pre-restore backups could not be loaded.' }));
      list.hidden = false;
      return;
    }
    const backups = answer.body.backups;
    if (backups.length === 0) {
      list.replaceChildren(el('p', { class: 'empty', text: 'No pre-restore backups yet: one is saved before every restore.' }));
      list.hidden = false;
      return;
    }
    const rows = backups.map((b) => {
      const download = el('a', { class: 'button quiet', href: url + '/' + encodeURIComponent(b.name), download: b.name, text: 'Download' });
      const restoreButton = el('button', { class: 'button quiet', type: 'button', text: 'Restore\u2026', 'data-name': b.name });
      restoreButton.addEventListener('click', () => void check(b.name));
      return el('tr', {}, [
        el('td', { class: 'name', 'data-label': 'Backup', text: b.name }),
        el('td', { 'data-label': 'Saved', text: b.createdAt.slice(0, 16).replace('T', ' ') + ' UTC' }),
        el('td', { class: 'num', 'data-label': 'Size', title: b.bytes.toLocaleString('en-US') + ' bytes', text: formatBytes(b.bytes) }),
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
}
