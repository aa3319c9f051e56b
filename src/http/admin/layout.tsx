import type { Child, FC } from 'hono/jsx';
import { raw } from 'hono/html';
import { SCRIPT } from './script.js';
import { STYLES } from './styles.js';

export const Logo: FC = () => (
  <svg viewBox="0 0 32 32" aria-hidden="true" focusable="false">
    <rect width="32" height="32" rx="8" fill="currentColor" />
    <g fill="none" stroke="#fff" stroke-width="2">
      <ellipse cx="16" cy="10" rx="7" ry="3" />
      <path d="M9 10v12c0 1.7 3.1 3 7 3s7-1.3 7-3V10" />
      <path d="M9 16c0 1.7 3.1 3 7 3s7-1.3 7-3" />
    </g>
  </svg>
);

export const DownloadIcon: FC = () => (
  <svg viewBox="0 0 24 24" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
    <path d="M12 4v11m0 0-4.5-4.5M12 15l4.5-4.5M5 19h14" />
  </svg>
);

interface DocumentProps {
  title: string;
  nonce: string;
  /** Right side of the top bar (the sign-out button). */
  actions?: Child;
  /** Whether the download script is needed. */
  script?: boolean;
  children?: Child;
}

/** The HTML shell: head with the inline stylesheet, the top bar, then the page. */
export const Document: FC<DocumentProps> = ({ title, nonce, actions, script = false, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="color-scheme" content="light dark" />
      <meta name="robots" content="noindex" />
      <title>{title}</title>
      <link rel="icon" href="data:," />
      <style nonce={nonce}>{raw(STYLES)}</style>
    </head>
    <body>
      <header class="top">
        <div class="bar">
          <div class="brand">
            <Logo />
            dbzip <span>backup</span>
          </div>
          {actions}
        </div>
      </header>
      {children}
      {script ? <script nonce={nonce}>{raw(SCRIPT)}</script> : null}
    </body>
  </html>
);
