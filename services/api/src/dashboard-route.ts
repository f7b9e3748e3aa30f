import { readdir, readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { dashboardAssets } from './dashboard-bundle.ts';

/** The dashboard's static files (index.html, style.css); its script is bundled from dashboard/ (dashboard-bundle.ts). */
export const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

/**
 * Serves `public/` from memory, each file at its own fixed route (`/` is index.html), plus
 * `/dashboard.js` (the bundled dashboard) and `/dashboard.css` (uPlot's stylesheet and
 * style.css). Reading everything once at start-up leaves no path that a request could steer
 * outside the folder.
 */
export async function registerDashboardRoutes(app: FastifyInstance, dir = PUBLIC_DIR): Promise<void> {
  const files = new Map<string, { body: Buffer | string; contentType: string }>();
  const names = (await readdir(dir, { withFileTypes: true })).filter((entry) => entry.isFile() && CONTENT_TYPES[extname(entry.name)]);
  for (const entry of names) {
    const body = await readFile(`${dir}/${entry.name}`);
    const contentType = CONTENT_TYPES[extname(entry.name)] ?? 'application/octet-stream';
    for (const url of entry.name === 'index.html' ? ['/', '/index.html'] : [`/${entry.name}`]) files.set(url, { body, contentType });
  }
  const assets = await dashboardAssets(undefined, names.some((entry) => entry.name === 'style.css') ? `${dir}/style.css` : undefined);
  files.set('/dashboard.js', { body: assets.js, contentType: CONTENT_TYPES['.js'] as string });
  files.set('/dashboard.css', { body: assets.css, contentType: CONTENT_TYPES['.css'] as string });
  for (const [url, file] of files) {
    app.get(url, { schema: { hide: true } }, (_request, reply) => {
      reply.header('content-type', file.contentType).header('cache-control', 'no-cache').send(file.body);
    });
  }
}
