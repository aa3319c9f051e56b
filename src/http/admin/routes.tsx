import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { DbzipError, PayloadTooLargeError } from '../../errors.js';
import { inspect } from '../../inspect.js';
import { CROSS_SITE_MESSAGE, FORBIDDEN_MESSAGE, keyMatches } from '../auth.js';
import type { AppEnv, RouteDeps } from '../context.js';
import { ERROR_STATUS } from '../error-status.js';
import { errorResponse } from '../openapi.js';
import { crossSiteReason, isSecureRequest, mountPrefix, pageHref, serializeCookie, SESSION_COOKIE } from '../session.js';
import { htmlResponse, pageNonce } from './html.js';
import { AdminPage, type PageContext, type PageState } from './page.js';
import { sizeNote } from './size-note.js';

/** What the page may offer besides downloading. */
export interface AdminCapabilities {
  /** The server has POST /api/restore: the signed-in page shows the restore form. */
  restore: boolean;
}

/** The sign-in form holds one key: anything bigger is not ours. */
const MAX_FORM_BYTES = 8 * 1024;

const HTML_PAGE = { 'text/html': { schema: z.string() } };

const SIGNIN_REDIRECT = {
  description: 'Location: the page (relative). Set-Cookie: dbzip_session (HttpOnly, SameSite=Strict, Path = the mount prefix, Secure over https)',
  headers: { Location: { schema: { type: 'string' as const } }, 'Set-Cookie': { schema: { type: 'string' as const } } },
};

const pageRoute = (deps: RouteDeps) =>
  createRoute({
    method: 'get',
    path: '/',
    summary: 'The admin page: a sign-in form, or once signed in the version, databases, assets, skipped files and a Download button',
    description: 'Server-rendered HTML, no key needed to see the sign-in form. Links are relative, so it works under any mount prefix.',
    tags: ['page'],
    security: [],
    middleware: deps.limit,
    responses: {
      200: { description: 'The page', content: HTML_PAGE },
      403: { description: 'No API key is configured (the page says how to configure one)', content: HTML_PAGE },
      429: errorResponse('Too many requests (Retry-After is set)'),
      503: { description: 'Signed in, but the data directory cannot be listed (the page says why)', content: HTML_PAGE },
    },
  });

const signInRoute = (deps: RouteDeps, guard: MiddlewareHandler[]) =>
  createRoute({
    method: 'post',
    path: '/signin',
    summary: 'Browser sign-in from the page: checks the key once and sets a signed session cookie',
    tags: ['page'],
    security: [],
    middleware: [...deps.limit, ...guard],
    request: {
      body: {
        required: true,
        content: { 'application/x-www-form-urlencoded': { schema: z.object({ key: z.string().openapi({ description: 'The API key' }) }) } },
      },
    },
    responses: {
      303: SIGNIN_REDIRECT,
      401: { description: 'Wrong key: the sign-in form again, with the error', content: HTML_PAGE },
      403: errorResponse('A cross-site request, or no API key configured'),
      413: errorResponse('The form is larger than 8 KiB'),
      429: errorResponse('Too many requests (Retry-After is set)'),
    },
  });

const signOutRoute = (deps: RouteDeps, guard: MiddlewareHandler[]) =>
  createRoute({
    method: 'post',
    path: '/signout',
    summary: 'Browser sign-out: clears the session cookie and refuses its token from now on',
    tags: ['page'],
    security: [],
    middleware: [...deps.limit, ...guard],
    responses: {
      303: { description: 'Location: the page. Set-Cookie clears dbzip_session' },
      403: errorResponse('A cross-site request'),
      429: errorResponse('Too many requests (Retry-After is set)'),
    },
  });

/** Sign-in and sign-out change state from a form: only from a page of this origin. */
const sameOriginOnly =
  (trustProxy: number): MiddlewareHandler =>
  async (c, next) => {
    const reason = crossSiteReason(c, trustProxy);
    if (reason !== undefined) throw new DbzipError('FORBIDDEN', `${CROSS_SITE_MESSAGE} ${reason}`);
    await next();
  };

const formLimit = bodyLimit({
  maxSize: MAX_FORM_BYTES,
  onError: () => {
    throw new PayloadTooLargeError(`the sign-in form is larger than ${MAX_FORM_BYTES / 1024} KiB`);
  },
});

/** GET / (the page), POST /signin and POST /signout. Returns the page's handler for registerPageAtTrailingSlash. */
export function registerAdminRoutes(app: OpenAPIHono<AppEnv>, deps: RouteDeps, capabilities: AdminCapabilities): PageHandler {
  const { options, logger, sessions } = deps;
  const auth = options.auth;
  const guard = [sameOriginOnly(options.trustProxy), formLimit];
  const audit = (c: Context<AppEnv>, action: 'signin' | 'signout', outcome: 'ok' | 'rejected') =>
    logger.info({ audit: action, outcome, reqId: c.get('requestId'), client: c.get('client') }, `browser ${action}`);

  const pageContext = (c: Context, base: string, prefix: string): PageContext => ({
    nonce: pageNonce(c),
    base,
    cookiePath: prefix === '' ? '/' : prefix,
    sessionTtlMs: options.sessionTtlMs,
    restore: capabilities.restore,
    stored: deps.storedBackups !== undefined,
    encryptedTo: options.backup.encrypt !== undefined && 'recipients' in options.backup.encrypt ? options.backup.encrypt.recipients.length : 0,
  });
  const render = (page: PageContext, state: PageState, status: number, headers: Record<string, string> = {}) =>
    htmlResponse(<AdminPage page={page} state={state} />, status, headers);

  const showPage = async (c: Context<AppEnv>): Promise<Response> => {
    const raw = new URL(c.req.url).pathname;
    // Served at the mount path itself (`/admin/backup`) links need the last segment; with a trailing slash they do not.
    const base = raw.endsWith('/') ? './' : `./${raw.slice(raw.lastIndexOf('/') + 1)}/`;
    const page = pageContext(c, base, mountPrefix(c, ''));
    if (auth.kind === 'unconfigured') return render(page, { kind: 'unconfigured' }, 403);
    // A session counts only on a same-origin request, as everywhere else.
    const signedIn = auth.kind === 'none' || (sessions?.fromRequest(c) === true && crossSiteReason(c, options.trustProxy) === undefined);
    if (!signedIn) return render(page, { kind: 'signin' }, 200);
    const canSignOut = auth.kind === 'key';
    try {
      const inspection = await inspect({ ...options.backupOptions, signal: c.req.raw.signal });
      return render(page, { kind: 'inventory', canSignOut, inspection, sizeNote: sizeNote(inspection, options.backup) }, 200);
    } catch (error) {
      if (!(error instanceof DbzipError)) throw error;
      return render(page, { kind: 'unavailable', canSignOut, code: error.code, message: error.message }, ERROR_STATUS[error.code]);
    }
  };
  app.openapi(pageRoute(deps), showPage);

  app.openapi(signInRoute(deps, guard), async (c) => {
    if (auth.kind === 'unconfigured') throw new DbzipError('FORBIDDEN', FORBIDDEN_MESSAGE);
    const prefix = mountPrefix(c, '/signin');
    const home = pageHref(c, prefix);
    if (auth.kind === 'none' || sessions === undefined) return new Response(null, { status: 303, headers: { Location: home } });
    const { key } = c.req.valid('form');
    // Pasted keys often bring a space or a line break along; a key never has them at its ends.
    if (!keyMatches(auth, key.trim())) {
      audit(c, 'signin', 'rejected');
      const error = 'That is not the API key of this service. Check it and try again.';
      return render(pageContext(c, './', prefix), { kind: 'signin', error }, 401, { 'WWW-Authenticate': 'Bearer realm="dbzip"' });
    }
    audit(c, 'signin', 'ok');
    const cookie = serializeCookie(SESSION_COOKIE, sessions.issue(), {
      path: prefix,
      maxAgeSeconds: options.sessionTtlMs / 1000,
      httpOnly: true,
      secure: isSecureRequest(c, options.trustProxy),
    });
    return new Response(null, { status: 303, headers: { Location: home, 'Set-Cookie': cookie } });
  });

  app.openapi(signOutRoute(deps, guard), (c) => {
    const prefix = mountPrefix(c, '/signout');
    sessions?.revoke(c);
    audit(c, 'signout', 'ok');
    const cleared = serializeCookie(SESSION_COOKIE, '', { path: prefix, maxAgeSeconds: 0, httpOnly: true, secure: isSecureRequest(c, options.trustProxy) });
    return new Response(null, { status: 303, headers: { Location: pageHref(c, prefix), 'Set-Cookie': cleared } });
  });
  return showPage;
}

export type PageHandler = (c: Context<AppEnv>) => Promise<Response>;

/**
 * The page at the mount path with a trailing slash too: mounted with `host.route('/admin/backup', app)`,
 * the page route is exactly `/admin/backup`, and a host with Hono's default strict routing answers
 * `/admin/backup/` with its own bare 404. Hono stores a sub-app's `/` as the mount path itself, so no
 * route path of ours can name the slashed URL; `/*` can, and passes every other path on. Register it
 * last, so it runs after every real route has had its turn (an unknown path still gets our 404).
 */
export function registerPageAtTrailingSlash(app: OpenAPIHono<AppEnv>, deps: RouteDeps, page: PageHandler): void {
  app.get('/*', async (c, next) => {
    // routePath is the mounted pattern ('/admin/backup/*'); without its '*' it is the slashed mount path.
    if (c.req.path !== c.req.routePath.slice(0, -1)) return next();
    for (const limit of deps.limit) await limit(c, async () => {});
    return page(c);
  });
}
