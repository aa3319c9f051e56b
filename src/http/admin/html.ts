import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import type { JSX } from 'hono/jsx/jsx-runtime';

/** A fresh CSP nonce per response: the page's one inline style and one inline script carry it. */
export const newNonce = (): string => randomBytes(16).toString('base64');

/**
 * Nothing loads but what the page inlines. fetch() only to this origin (the restore card's upload). Frames: only same-origin ones (the download iframe), and the
 * page itself may be framed by its own origin only (an appliance's admin panel on the same origin).
 */
export const contentSecurityPolicy = (nonce: string): string =>
  [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
    "base-uri 'none'",
  ].join('; ');

/** A browser navigation (link, form, iframe) asks for HTML; API clients and fetch() send other Accept headers. */
export const wantsHtml = (c: Context): boolean => /\btext\/html\b/i.test(c.req.header('accept') ?? '');

/** `<!DOCTYPE html>` plus a rendered element. Our components are synchronous, so the element is a string already. */
export function renderDocument(element: JSX.Element): string {
  if (element instanceof Promise) throw new TypeError('admin pages are rendered synchronously: no async components');
  return `<!DOCTYPE html>${element.toString()}`;
}

/** An HTML answer with the page's security headers. */
export function htmlResponse(element: JSX.Element, nonce: string, status: number, headers: Record<string, string> = {}): Response {
  return new Response(renderDocument(element), {
    status,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': contentSecurityPolicy(nonce),
      'Referrer-Policy': 'same-origin',
      'Cache-Control': 'no-store',
      ...headers,
    },
  });
}
