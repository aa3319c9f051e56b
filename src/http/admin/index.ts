/** The admin page: GET / with browser sign-in, and the HTML answer to a failed navigation. */
export { registerAdminRoutes, registerPageAtTrailingSlash } from './routes.js';
export type { AdminCapabilities, PageHandler } from './routes.js';
export { htmlError } from './error-page.js';
export { securityHeaders, wantsHtml } from './html.js';
