/**
 * The Download button. Without this script it is a plain link to api/backup and still works; with it
 * the page says what is happening:
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
 */

/** GET api/backup/progress?dl=<token> (src/http/download-progress.ts). */
interface DownloadReport {
  state: 'running' | 'ok' | 'aborted' | 'stalled' | 'failed';
  bytes: number;
  size: number | null;
  estimatedSize: number;
  inputBytes: number;
}

function downloadCard(): void {
  const link = byId('download', HTMLAnchorElement);
  const status = byId('download-status', HTMLElement);
  const problem = byId('download-error', HTMLElement);
  if (!link || !status || !problem) return;
  const cookiePath = link.getAttribute('data-cookie-path') || '/';
  const progressUrl = link.getAttribute('data-progress');
  const say = statusLine(status);
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let watching = 0;
  let frame: HTMLIFrameElement | null = null;
  let poll = 0;

  const newToken = () => Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => letters[b % letters.length]).join('');
  const settle = () => {
    clearInterval(poll);
    link.removeAttribute('aria-disabled');
  };
  const showFailure = (title: string, message: string) => {
    problem.replaceChildren(el('strong', { text: title }), el('span', { text: message }));
    problem.hidden = false;
    say('');
  };
  const readFrame = (loaded: HTMLIFrameElement) => {
    let doc: Document | null = null;
    try {
      doc = loaded.contentDocument;
    } catch {
      doc = null;
    }
    if (doc !== null && doc.URL === 'about:blank') return;
    settle();
    const page = doc === null ? null : doc.querySelector('[data-dbzip-error]');
    if (page !== null) {
      const title = page.querySelector('h1');
      const message = page.querySelector('.message');
      showFailure(title ? (title.textContent || '').trim() : 'The backup could not be made', message ? (message.textContent || '').trim() : '');
      return;
    }
    const what = doc !== null && doc.title ? ' (' + doc.title + ')' : '';
    showFailure('The download did not start', 'The server answered with an unexpected page' + what + '. Try again, or look at the server log.');
  };

  const watch = (url: string, token: string) => {
    const target = new URL(url, location.href);
    target.searchParams.set('dl', token);
    const tick = async () => {
      const answer = await callJson<DownloadReport>('GET', target.href);
      if (!answer.ok) {
        say('');
        return;
      }
      const report = answer.body;
      if (report.state === 'running') {
        const exact = report.size !== null;
        const total = report.size !== null ? report.size : report.estimatedSize;
        const done = exact ? report.bytes : Math.min(report.inputBytes, total);
        const percent = total > 0 ? Math.floor((100 * done) / total) : 0;
        const how = exact
          ? formatBytes(report.bytes) + ' of ' + formatBytes(total) + ' (' + percent + '\u00a0%)'
          : formatBytes(report.bytes) + ' sent, about ' + percent + '\u00a0% (estimate)';
        say('Downloading \u2014 ' + how + ' \u2014 see your browser\u2019s downloads.', 'busy');
        watching = window.setTimeout(tick, 1000);
        return;
      }
      if (report.state === 'ok') say('Download finished: ' + formatBytes(report.bytes) + ' sent. Your browser has saved it (see its downloads).', 'done');
      else showFailure('The download broke off', 'The server stopped sending after ' + formatBytes(report.bytes) + ' (' + report.state + '). Your browser keeps no partial file as a backup; try again.');
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
    say('Preparing the backup: the server is taking a consistent snapshot of every database\u2026', 'busy');
    if (frame !== null) frame.remove();
    const loading = document.createElement('iframe');
    frame = loading;
    loading.hidden = true;
    loading.title = 'Backup download';
    loading.addEventListener('load', () => readFrame(loading));
    const url = new URL(link.href);
    url.searchParams.set('dl', token);
    loading.src = url.href;
    document.body.append(loading);
    clearInterval(poll);
    poll = window.setInterval(() => {
      if (!document.cookie.split('; ').includes(name + '=1')) return;
      const secure = location.protocol === 'https:' ? '; Secure' : '';
      document.cookie = name + '=; Max-Age=0; Path=' + cookiePath + '; SameSite=Strict' + secure;
      settle();
      say('Downloading \u2014 see your browser\u2019s downloads.', 'busy');
      if (progressUrl) watch(progressUrl, token);
    }, 250);
  });
}
