import { readdir, readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** The dashboard's files: plain HTML, CSS and JS, no build step (STYLE, services/api). */
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
 * Serves the few files of `public/` from memory, each at its own fixed route (`/` is
 * index.html). Reading them once at start-up leaves no path that a request could steer
 * outside the folder.
 */
export async function registerDashboardRoutes(app: FastifyInstance, dir = PUBLIC_DIR): Promise<void> {
  const names = (await readdir(dir, { withFileTypes: true })).filter((entry) => entry.isFile() && CONTENT_TYPES[extname(entry.name)]);
  for (const entry of names) {
    const body = await readFile(`${dir}/${entry.name}`);
    const contentType = CONTENT_TYPES[extname(entry.name)] ?? 'application/octet-stream';
    const urls = entry.name === 'index.html' ? ['/', '/index.html'] : [`/${entry.name}`];
    for (const url of urls) {
      app.get(url, { schema: { hide: true } }, (_request, reply) => {
        reply.header('content-type', contentType).header('cache-control', 'no-cache').send(body);
      });
    }
  }
}
