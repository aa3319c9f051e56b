import type { Context, MiddlewareHandler } from 'hono';
import { NONCE, secureHeaders } from 'hono/secure-headers';
import type { JSX } from 'hono/jsx/jsx-runtime';

/** Hono's off switches for the headers dbzip does not send: each would change how a host app or a proxy sees it. */
const NOT_SENT = {
  crossOriginEmbedderPolicy: false,
  crossOriginResourcePolicy: false,
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  strictTransportSecurity: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xFrameOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
  removePoweredBy: false,
} as const;

/**
 * Every answer: nosniff, the page's Content-Security-Policy and Referrer-Policy (harmless on JSON and
 * zips). Nothing loads but what the page inlines, with a fresh nonce per response (`pageNonce`).
 * fetch() only to this origin (the restore card's upload). Frames: only same-origin ones (the download
 * iframe), and the page itself may be framed by its own origin only (an appliance's admin panel).
 */
export const securityHeaders = (): MiddlewareHandler =>
  secureHeaders({
    ...NOT_SENT,
    xContentTypeOptions: true,
    referrerPolicy: 'same-origin',
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: [NONCE],
      styleSrc: [NONCE],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      frameSrc: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'self'"],
      baseUri: ["'none'"],
    },
  });

/** The nonce securityHeaders() put in this response's CSP: the page's one inline style and one inline script carry it. */
export function pageNonce(c: Context): string {
  const nonce = c.get('secureHeadersNonce');
  if (nonce === undefined) throw new Error('securityHeaders() must run before a page is rendered');
  return nonce;
}

/** A browser navigation (link, form, iframe) asks for HTML; API clients and fetch() send other Accept headers. */
export const wantsHtml = (c: Context): boolean => /\btext\/html\b/i.test(c.req.header('accept') ?? '');

/** `<!DOCTYPE html>` plus a rendered element. Our components are synchronous, so the element is a string already. */
export function renderDocument(element: JSX.Element): string {
  if (element instanceof Promise) throw new TypeError('admin pages are rendered synchronously: no async components');
  return `<!DOCTYPE html>${element.toString()}`;
}

/** An HTML answer; securityHeaders() adds the CSP that lets its nonce run. */
export function htmlResponse(element: JSX.Element, status: number, headers: Record<string, string> = {}): Response {
  return new Response(renderDocument(element), {
    status,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      ...headers,
    },
  });
}
