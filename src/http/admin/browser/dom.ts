/**
 * What every card's script shares. The files in this folder are plain scripts (no import, no export),
 * type-checked against the DOM by tsconfig.browser.json and compiled into one file that the page
 * inlines with its CSP nonce (see ../script.ts); main.ts, last, starts each card.
 */

/** The server's own formatBytes (src/format.ts), appended to the compiled script: page and CLI read alike. */
declare const formatBytes: typeof import('../../../format.js').formatBytes;

/** The element with this id when it is of the expected kind; null on a page without that card. */
function byId<T extends HTMLElement>(id: string, kind: { new (): T; prototype: T }): T | null {
  const node = document.getElementById(id);
  return node instanceof kind ? node : null;
}

type Child = Node | string;

/** A new element: `text` sets its text, every other prop is an attribute. */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string> = {}, children: readonly Child[] = []): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** `say(text, state)` for one status line: its class becomes `status` plus the state (busy, done). */
function statusLine(status: HTMLElement): (text: string, state?: string) => void {
  return (text, state = '') => {
    status.textContent = text;
    status.className = 'status' + (state ? ' ' + state : '');
  };
}

const plural = (n: number, one: string, many?: string): string => n + ' ' + (n === 1 ? one : many || one + 's');
