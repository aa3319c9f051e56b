/**
 * The restore card:
 *
 * 1. "Check backup" posts the chosen file itself as the body of `api/restore?dryRun=1` with fetch()
 *    (the browser streams it from disk; the server spools it into the data directory's .dbzip/ and
 *    removes it afterwards), then shows the plan: the version comparison and, per file, added /
 *    replaced / unchanged / removed / kept.
 * 2. "Restore now" posts the same file again without dryRun, with the options the plan was made
 *    with, and shows the report: the pre-restore backup that undoes it and the counts.
 * 3. Any error is shown with every problem the server listed.
 */

interface RestoreChoice {
  file: File;
  mode: string;
  exact: boolean;
}

const KINDS: Record<string, string> = { database: 'Database', asset: 'Asset', version: 'VERSION file' };

const summaryList = (summary: RestoreBody['plan']['summary']) =>
  el('ul', { class: 'summary', 'aria-label': 'Summary' },
    ACTIONS.filter((a) => summary[a] > 0).map((a) => el('li', {}, [el('span', { class: 'tag ' + a, text: a }), ' ' + summary[a]])));

const itemsTable = (items: readonly PlanItem[], caption: string) =>
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
      el('td', { class: 'num', 'data-label': 'Size', title: item.bytes.toLocaleString('en-US') + ' bytes', text: formatBytes(item.bytes) }),
    ]))),
  ]);

function restoreCard(): void {
  const form = byId('restore-form', HTMLFormElement);
  const status = byId('restore-status', HTMLElement);
  const problem = byId('restore-error', HTMLElement);
  const result = byId('restore-result', HTMLElement);
  const fileInput = byId('restore-file', HTMLInputElement);
  const modeInput = byId('restore-mode', HTMLSelectElement);
  const exactInput = byId('restore-exact', HTMLInputElement);
  if (!form || !status || !problem || !result || !fileInput || !modeInput || !exactInput) return;
  form.hidden = false;
  const url = form.getAttribute('data-url') || 'api/restore';
  const say = statusLine(status);
  let pending: RestoreChoice | null = null;

  const busy = (on: boolean) => {
    for (const control of Array.from(form.elements)) if ('disabled' in control) (control as HTMLInputElement).disabled = on;
    for (const button of Array.from(result.querySelectorAll('button'))) button.disabled = on;
  };
  const clearResult = () => {
    pending = null;
    result.replaceChildren();
    result.hidden = true;
  };
  const fail = (error: ApiError | null, code: number) => {
    showRestoreProblem(problem, error, code);
    say('');
  };
  const optionsLine = (body: RestoreBody) =>
    'Mode ' + body.mode + (body.exact ? ', exact' : '') + ' \u00b7 ' + plural(body.verify.databases.length, 'database') + ', ' +
    plural(body.verify.assets, 'asset file') + ' \u00b7 ' + formatBytes(body.uploadBytes) + ' uploaded';

  const send = (choice: RestoreChoice, dryRun: boolean) => {
    const target = new URL(url, location.href);
    target.searchParams.set('mode', choice.mode);
    if (choice.exact) target.searchParams.set('exact', '1');
    if (dryRun) target.searchParams.set('dryRun', '1');
    return callJson<RestoreBody>('POST', target.href, { body: choice.file, contentType: 'application/zip' });
  };

  const showPlan = (body: RestoreBody, choice: RestoreChoice) => {
    const changes = changeCount(body);
    const children: Child[] = [
      el('h3', { id: 'restore-plan-title', text: 'The backup passed every check' }),
      el('p', { class: 'muted', text: choice.file.name + ' \u00b7 ' + optionsLine(body) }),
      el('p', { class: 'version', text: 'Version: ' + body.version.reason }),
      summaryList(body.plan.summary),
      itemsTable(body.plan.items, 'What a restore would do to each file'),
    ];
    const buttons: HTMLButtonElement[] = [];
    if (changes > 0) {
      children.push(el('p', { class: 'hint', text: 'Restore now saves the current data as a pre-restore backup first, then changes ' + plural(changes, 'file') + '.' }));
      const go = el('button', { class: 'button danger', type: 'button', text: 'Restore now' });
      go.addEventListener('click', () => void restoreNow());
      buttons.push(go);
    } else {
      children.push(el('p', { class: 'done', text: 'Nothing to restore: the data directory already holds what this backup holds.' }));
    }
    const cancel = el('button', { class: 'button quiet', type: 'button', text: changes > 0 ? 'Cancel' : 'Close' });
    cancel.addEventListener('click', () => {
      clearResult();
      say('');
      fileInput.focus();
    });
    buttons.push(cancel);
    children.push(el('div', { class: 'actions' }, buttons));
    result.setAttribute('aria-labelledby', 'restore-plan-title');
    result.replaceChildren(...children);
    result.hidden = false;
    pending = changes > 0 ? choice : null;
  };

  const showReport = (body: RestoreBody) => {
    const changed = changedItems(body);
    const children: Child[] = [el('h3', { id: 'restore-report-title', text: body.applied ? 'Restored' : 'Nothing was changed' })];
    if (body.preRestore) {
      children.push(el('p', {}, ['The data before this restore was saved as ', el('code', { text: body.preRestore }), '; restoring that file undoes this restore.']));
    }
    children.push(el('p', { class: 'muted', text: optionsLine(body) + ' \u00b7 ' + plural(changeCount(body), 'file') + ' changed in ' + (body.durationMs / 1000).toFixed(1) + '\u00a0s' }));
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
    const choice = pending;
    pending = null;
    problem.hidden = true;
    busy(true);
    say('Restoring: uploading the backup again, checking it, saving the current data, then restoring\u2026', 'busy');
    const answer = await send(choice, false);
    busy(false);
    if (!answer.ok) {
      clearResult();
      fail(answer.error, answer.status);
      return;
    }
    say(answer.body.applied ? 'Restore complete.' : 'Nothing needed restoring.', 'done');
    showReport(answer.body);
  };

  form.addEventListener('change', () => {
    if (!result.hidden) clearResult();
    problem.hidden = true;
    say('');
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = fileInput.files && fileInput.files[0];
    if (!file) return;
    const choice: RestoreChoice = { file, mode: modeInput.value, exact: exactInput.checked };
    clearResult();
    problem.hidden = true;
    busy(true);
    say('Uploading and checking ' + file.name + ' (' + formatBytes(file.size) + '): every entry, checksum and database is verified\u2026', 'busy');
    const answer = await send(choice, true);
    busy(false);
    if (!answer.ok) {
      fail(answer.error, answer.status);
      return;
    }
    say('');
    showPlan(answer.body, choice);
    const heading = document.getElementById('restore-plan-title');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    }
  });
}
