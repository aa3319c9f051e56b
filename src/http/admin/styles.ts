/** The page's one stylesheet, inlined with the CSP nonce: no extra request, nothing to cache or mount. */
export const STYLES = `
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --card: #ffffff; --text: #1c2128; --muted: #59636e; --border: #d9dee4; --soft: #eef1f4;
  --accent: #1f6feb; --accent-hover: #1858c4; --on-accent: #ffffff; --focus: rgba(31, 111, 235, .45);
  --err: #9f1c1c; --err-bg: #fdeeee; --err-border: #efbcbc; --ok: #1a7f37;
  --danger: #b42318; --danger-hover: #912018;
  --add: #116329; --add-bg: #dcf5e3; --rep: #7a4a00; --rep-bg: #fdf0d5;
  --radius: 12px;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1217; --card: #171b22; --text: #e5e8ec; --muted: #9aa5b1; --border: #2b323c; --soft: #222933;
    --accent: #5b9bff; --accent-hover: #7db0ff; --on-accent: #08111f; --focus: rgba(91, 155, 255, .5);
    --err: #ffb4b4; --err-bg: #361819; --err-border: #6c2a2c; --ok: #56d37a;
    --danger: #d9453a; --danger-hover: #e8645a;
    --add: #7ee2a0; --add-bg: #173523; --rep: #f4c978; --rep-bg: #3a2c12;
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--accent); }
a:hover { color: var(--accent-hover); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
h1, h2 { line-height: 1.25; margin: 0; }
h1 { font-size: 1.625rem; font-weight: 700; letter-spacing: -.01em; }
h2 { font-size: 1.125rem; font-weight: 650; }
p { margin: 0; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .875em; }

.top { background: var(--card); border-bottom: 1px solid var(--border); }
.bar { max-width: 60rem; margin: 0 auto; padding: .75rem 1.25rem; display: flex; align-items: center; gap: 1rem; }
.brand { display: flex; align-items: center; gap: .5rem; font-weight: 700; font-size: 1.125rem; color: var(--text); text-decoration: none; }
.brand svg { width: 1.75rem; height: 1.75rem; flex: none; color: var(--accent); }
.brand svg g { stroke: var(--on-accent); }
.brand span { color: var(--muted); font-weight: 500; }
.bar form { margin-left: auto; }

main { max-width: 60rem; margin: 0 auto; padding: 2rem 1.25rem 3rem; display: grid; gap: 1.25rem; }
main.narrow { max-width: 28rem; padding-top: 3rem; }
.intro { display: grid; gap: .25rem; }
.muted { color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--border); border-radius: var(--radius); padding: 1.25rem 1.5rem; display: grid; gap: .75rem; align-content: start; min-width: 0; }
.card-head { display: flex; align-items: baseline; gap: .5rem; flex-wrap: wrap; }
.count { font-size: .8125rem; font-weight: 600; color: var(--muted); background: var(--soft); border-radius: 999px; padding: 0 .5rem; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1.25rem; }
.contents { display: flex; flex-wrap: wrap; gap: .25rem 1rem; color: var(--muted); font-size: .9375rem; padding: 0; margin: 0; list-style: none; }

.button {
  display: inline-flex; align-items: center; justify-content: center; gap: .5rem; min-height: 2.75rem;
  padding: .5rem 1.25rem; border-radius: 8px; border: 1px solid transparent; cursor: pointer;
  font: inherit; font-weight: 600; text-decoration: none; background: var(--accent); color: var(--on-accent);
}
.button:hover { background: var(--accent-hover); color: var(--on-accent); }
.button svg { width: 1.25rem; height: 1.25rem; flex: none; }
.button[aria-disabled="true"] { opacity: .65; cursor: progress; }
.button.quiet { background: transparent; color: var(--text); border-color: var(--border); min-height: 2.25rem; padding: .25rem .875rem; font-weight: 500; }
.button.quiet:hover { background: var(--soft); }
.download-row { display: flex; align-items: center; gap: 1rem; flex-wrap: wrap; }

.status { color: var(--muted); min-height: 1.5em; }
.status:empty { display: none; }
.status.busy::before {
  content: ""; display: inline-block; width: 1em; height: 1em; margin-right: .5rem; vertical-align: -.15em;
  border: 2px solid currentColor; border-right-color: transparent; border-radius: 50%; animation: spin .8s linear infinite;
}
.status.done { color: var(--ok); font-weight: 600; }
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .status.busy::before { animation: none; } }

.alert { border: 1px solid var(--err-border); background: var(--err-bg); color: var(--err); border-radius: 8px; padding: .75rem 1rem; display: grid; gap: .25rem; overflow-wrap: anywhere; }
.alert[hidden] { display: none; }
.alert strong { font-weight: 650; }

table { width: 100%; border-collapse: collapse; font-size: .9375rem; }
th, td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid var(--border); vertical-align: top; }
th:first-child, td:first-child { padding-left: 0; }
th:last-child, td:last-child { padding-right: 0; }
thead th { font-size: .8125rem; font-weight: 600; color: var(--muted); }
tbody tr:last-child td { border-bottom: 0; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.name { font-weight: 600; overflow-wrap: anywhere; }
.tag { display: inline-block; font-size: .75rem; font-weight: 600; line-height: 1.6; padding: 0 .5rem; border-radius: 999px; background: var(--soft); color: var(--text); white-space: nowrap; }
.list { list-style: none; margin: 0; padding: 0; display: grid; gap: .5rem; }
.list li { display: flex; justify-content: space-between; gap: 1rem; align-items: baseline; }
.list li.skip { display: grid; gap: .125rem; }
.skip .tag { margin-left: .125rem; vertical-align: .0625rem; }
.skip .why { color: var(--muted); font-size: .9375rem; }
.empty { color: var(--muted); }

form.signin { display: grid; gap: .5rem; }
label { font-weight: 600; }
input[type="password"], input[type="file"] {
  font: inherit; width: 100%; min-height: 2.75rem; padding: .5rem .75rem; color: var(--text);
  background: var(--bg); border: 1px solid var(--border); border-radius: 8px;
}
input[type="file"] { padding: .375rem .5rem; cursor: pointer; }
input[type="file"]::file-selector-button {
  font: inherit; font-weight: 500; margin-right: .75rem; padding: .25rem .875rem; min-height: 2rem; cursor: pointer;
  color: var(--text); background: var(--card); border: 1px solid var(--border); border-radius: 6px;
}
input[type="file"]::file-selector-button:hover { background: var(--soft); }
.hint { font-size: .875rem; color: var(--muted); }
form.signin .button { margin-top: .5rem; }

.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
h3 { font-size: 1rem; font-weight: 650; margin: 0; line-height: 1.3; }
h3:focus { outline: none; }
.restore-form { display: grid; gap: 1rem; }
.restore-form[hidden] { display: none; }
.field { display: grid; gap: .375rem; min-width: 0; }
.options { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem 1.5rem; align-items: start; }
select {
  font: inherit; width: 100%; min-height: 2.75rem; padding: .5rem .75rem; color: var(--text);
  background: var(--bg); border: 1px solid var(--border); border-radius: 8px;
}
.check { display: flex; gap: .625rem; align-items: flex-start; padding-top: 1.875rem; }
.check input { width: 1.25rem; height: 1.25rem; margin: .125rem 0 0; flex: none; accent-color: var(--accent); }
.check label { font-weight: 600; }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; align-items: center; }
.button:disabled { opacity: .65; cursor: progress; }
.button.danger { background: var(--danger); color: #fff; }
.button.danger:hover { background: var(--danger-hover); color: #fff; }
.result { display: grid; gap: .75rem; border-top: 1px solid var(--border); padding-top: 1rem; }
.result[hidden] { display: none; }
#undo-list[hidden], #undo-force-row[hidden] { display: none; }
#undo .check { padding-top: .75rem; }
#undo ul.changes { list-style: none; padding: 0; margin: .5rem 0; display: grid; gap: .25rem; }
#undo td.row-actions { white-space: nowrap; }
.result .version { overflow-wrap: anywhere; }
.result .done { color: var(--ok); font-weight: 600; }
.result code { overflow-wrap: anywhere; }
.summary { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .375rem 1rem; }
.summary li { white-space: nowrap; }
.tag.added { background: var(--add-bg); color: var(--add); }
.tag.replaced { background: var(--rep-bg); color: var(--rep); }
.tag.removed { background: var(--err-bg); color: var(--err); }
.alert .problems { margin: .25rem 0; padding-left: 1.25rem; display: grid; gap: .25rem; }
.alert .message { white-space: pre-line; }
.alert .code { font-size: .8125rem; opacity: .85; }

footer { max-width: 60rem; margin: 0 auto; padding: 0 1.25rem 2rem; font-size: .875rem; color: var(--muted); }

@media (max-width: 40rem) {
  .bar { padding: .625rem 1rem; }
  main { padding: 1.25rem .75rem 2rem; gap: 1rem; }
  main.narrow { padding-top: 1.5rem; }
  h1 { font-size: 1.375rem; }
  .card { padding: 1rem; }
  .pair { grid-template-columns: 1fr; gap: 1rem; }
  .download-row .button { width: 100%; }
  .options { grid-template-columns: 1fr; }
  .check { padding-top: 0; }
  .actions .button { flex: 1 1 auto; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  table.stack tr { display: block; padding: .5rem 0; border-bottom: 1px solid var(--border); }
  table.stack tbody tr:last-child { border-bottom: 0; }
  table.stack td { display: flex; justify-content: space-between; gap: 1rem; padding: .125rem 0; border: 0; text-align: right; }
  table.stack td::before { content: attr(data-label); color: var(--muted); font-weight: 500; text-align: left; }
  table.stack td.name { font-size: 1rem; }
  table.stack td.name::before { content: none; }
  footer { padding: 0 .75rem 1.5rem; }
}
`;
