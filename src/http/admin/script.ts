import { formatBytes } from '../../format.js';
import { RESTORE_SCRIPT } from './restore-script.js';
import { UNDO_SCRIPT } from './undo-script.js';
import { STORED_SCRIPT } from './stored-backups-script.js';

/**
 * The page's only script, inlined with the CSP nonce: the download part below, then the restore card's
 * (restore-script.ts), which does nothing on a page without the restore card. Without it the Download button is a plain link
 * to api/backup and still works; with it the page says what is happening:
 *
 * 1. The click loads `api/backup?dl=<random token>` in a hidden same-origin iframe, and the status
 *    says the server is preparing the backup (snapshots are taken before the first byte).
 * 2. A successful answer carries `Set-Cookie: dbzip_dl_<token>=1` and becomes a download in the
 *    browser's own download manager; the page polls document.cookie, sees it, removes it, and says so.
 * 3. An error before the first byte is a small HTML page (the request was a navigation): the iframe
 *    loads it, and the page shows its title and message. A download never fires the iframe's load event.
 * 4. Once it started, the page asks `api/backup/progress?dl=<token>` every second how far it got (bytes
 *    of the exact size, or an estimated percentage from the plan's input bytes), and says when it is
 *    over: finished, or broken off. The browser's download manager tells the page none of this.
 *
 * Plain ES2020 in a string: src/ is compiled without DOM types, and the e2e test runs it in Chromium.
 */
const DOWNLOAD_SCRIPT = `
(() => {
  'use strict';
  const link = document.getElementById('download');
  const status = document.getElementById('download-status');
  const problem = document.getElementById('download-error');
  if (!link || !status || !problem) return;
  const cookiePath = link.getAttribute('data-cookie-path') || '/';
  const progressUrl = link.getAttribute('data-progress');
  const size = ${formatBytes.toString()};
  let watching = 0;
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let frame = null;
  let poll = 0;

  const newToken = () => Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => letters[b % letters.length]).join('');
  const say = (text, state) => {
    status.textContent = text;
    status.className = 'status' + (state ? ' ' + state : '');
  };
  const settle = () => {
    clearInterval(poll);
    link.removeAttribute('aria-disabled');
  };
  const showProblem = (title, message) => {
    const heading = document.createElement('strong');
    heading.textContent = title;
    const text = document.createElement('span');
    text.textContent = message;
    problem.replaceChildren(heading, text);
    problem.hidden = false;
    say('', '');
  };
  const readFrame = () => {
    let doc = null;
    try {
      doc = frame.contentDocument;
    } catch (error) {
      doc = null;
    }
    if (doc !== null && doc.URL === 'about:blank') return;
    settle();
    const page = doc === null ? null : doc.querySelector('[data-dbzip-error]');
    if (page !== null) {
      const title = page.querySelector('h1');
      const message = page.querySelector('.message');
      showProblem(title ? title.textContent.trim() : 'The backup could not be made', message ? message.textContent.trim() : '');
      return;
    }
    const what = doc !== null && doc.title ? ' (' + doc.title + ')' : '';
    showProblem('The download did not start', 'The server answered with an unexpected page' + what + '. Try again, or look at the server log.');
  };

  const watch = (token) => {
    const target = new URL(progressUrl, location.href);
    target.searchParams.set('dl', token);
    const tick = async () => {
      let report = null;
      try {
        const response = await fetch(target.href, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
        report = response.ok ? await response.json() : null;
      } catch (error) {
        report = null;
      }
      if (report === null) {
        say('', '');
        return;
      }
      if (report.state === 'running') {
        const exact = report.size !== null;
        const total = exact ? report.size : report.estimatedSize;
        const done = exact ? report.bytes : Math.min(report.inputBytes, total);
        const percent = total > 0 ? Math.floor((100 * done) / total) : 0;
        const how = exact ? size(report.bytes) + ' of ' + size(total) + ' (' + percent + '\u00a0%)' : size(report.bytes) + ' sent, about ' + percent + '\u00a0% (estimate)';
        say('Downloading \u2014 ' + how + ' \u2014 see your browser\u2019s downloads.', 'busy');
        watching = setTimeout(tick, 1000);
        return;
      }
      if (report.state === 'ok') say('Download finished: ' + size(report.bytes) + ' sent. Your browser has saved it (see its downloads).', 'done');
      else showProblem('The download broke off', 'The server stopped sending after ' + size(report.bytes) + ' (' + report.state + '). Your browser keeps no partial file as a backup; try again.');
    };
    clearTimeout(watching);
    void tick();
  };

  link.addEventListener('click', (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (link.getAttribute('aria-disabled') === 'true') return;
    const token = newToken();
    const name = 'dbzip_dl_' + token;
    link.setAttribute('aria-disabled', 'true');
    problem.hidden = true;
    say('Preparing the backup: the server is taking a consistent snapshot of every database\\u2026', 'busy');
    if (frame !== null) frame.remove();
    frame = document.createElement('iframe');
    frame.hidden = true;
    frame.title = 'Backup download';
    frame.addEventListener('load', readFrame);
    const url = new URL(link.href);
    url.searchParams.set('dl', token);
    frame.src = url.href;
    document.body.append(frame);
    clearInterval(poll);
    poll = setInterval(() => {
      if (!document.cookie.split('; ').includes(name + '=1')) return;
      const secure = location.protocol === 'https:' ? '; Secure' : '';
      document.cookie = name + '=; Max-Age=0; Path=' + cookiePath + '; SameSite=Strict' + secure;
      settle();
      say('Downloading \\u2014 see your browser\\u2019s downloads.', 'busy');
      if (progressUrl) watch(token);
    }, 250);
  });
})();
`;

export const SCRIPT = DOWNLOAD_SCRIPT + RESTORE_SCRIPT + UNDO_SCRIPT + STORED_SCRIPT;
