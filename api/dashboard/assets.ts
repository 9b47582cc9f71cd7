/**
 * The page's static files besides its bundled script: served by routes.ts, copied into the image by
 * scripts/build.ts. A new stylesheet goes here and in index.html's `<head>`, nowhere else.
 */
export const PAGE_STYLESHEETS = ['dashboard.css', 'market.css', 'traders.css', 'sign-in.css', 'timeline.css'] as const;
export const PAGE_FILES = ['index.html', ...PAGE_STYLESHEETS] as const;
