import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants, gzip } from 'node:zlib';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.ts';
import { dashboardAssets } from '../dashboard-bundle.ts';

/** The dashboard's static files (index.html, style.css); its script is bundled from dashboard/ (dashboard-bundle.ts). */
export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.svg', '.json']);

/** One representation of a file: its bytes and its strong ETag (the content's hash, plus the coding). */
interface Variant {
  body: Buffer;
  etag: string;
}

interface StaticFile {
  contentType: string;
  /** The hash every variant's ETag starts with. */
  tag: string;
  identity: Variant;
  br?: Variant;
  gzip?: Variant;
}

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/**
 * Each file compressed once, here, rather than on every request; a coding gets its own ETag
 * because its bytes differ (RFC 9110 section 8.8.3), all sharing the content's hash.
 */
async function staticFile(body: Buffer, contentType: string, compressible: boolean): Promise<StaticFile> {
  const tag = createHash('sha256').update(body).digest('base64url').slice(0, 32);
  const file: StaticFile = { contentType, tag, identity: { body, etag: `"${tag}"` } };
  if (compressible && body.length > 1024) {
    file.br = { body: await brotli(body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 9, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: body.length } }), etag: `"${tag}-br"` };
    file.gzip = { body: await gzipAsync(body, { level: 9 }), etag: `"${tag}-gz"` };
  }
  return file;
}

/** The codings Accept-Encoding allows, with q > 0. */
function acceptedCodings(header: string | undefined): Set<string> {
  const codings = new Set<string>();
  for (const part of (header ?? '').split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (name && (q === undefined || Number(q.slice(2)) > 0)) codings.add(name.trim());
  }
  return codings;
}

function variantFor(file: StaticFile, request: FastifyRequest): { variant: Variant; coding: 'br' | 'gzip' | null } {
  const accepted = acceptedCodings(request.headers['accept-encoding']);
  if (file.br && accepted.has('br')) return { variant: file.br, coding: 'br' };
  if (file.gzip && (accepted.has('gzip') || accepted.has('x-gzip'))) return { variant: file.gzip, coding: 'gzip' };
  return { variant: file.identity, coding: null };
}

/** Does If-None-Match name this content (in any coding)? Weak comparison, as RFC 9110 section 13.1.2 asks for it. */
export function matchesIfNoneMatch(header: string | undefined, tag: string): boolean {
  if (!header) return false;
  return header.split(',').some((entry) => {
    const value = entry.trim().replace(/^W\//, '');
    return value === '*' || value === `"${tag}"` || value === `"${tag}-br"` || value === `"${tag}-gz"`;
  });
}

/**
 * Serves `public/` from memory, each file at its own fixed route (`/` is index.html), plus
 * `/dashboard.js` (the bundled dashboard) and `/dashboard.css` (uPlot's stylesheet and
 * style.css). Reading everything once at start-up leaves no path that a request could steer
 * outside the folder. Each answer carries a strong ETag and `no-cache`: the browser keeps its
 * copy and asks each time, and a 304 costs a few bytes until the bundle changes.
 */
export const dashboardRoutes: FastifyPluginAsync<ApiContext> = async (app) => {
  const dir = PUBLIC_DIR;
  const files = new Map<string, StaticFile>();
  const names = (await readdir(dir, { withFileTypes: true })).filter((entry) => entry.isFile() && CONTENT_TYPES[extname(entry.name)]);
  for (const entry of names) {
    const extension = extname(entry.name);
    const file = await staticFile(await readFile(`${dir}/${entry.name}`), CONTENT_TYPES[extension] ?? 'application/octet-stream', COMPRESSIBLE.has(extension));
    for (const url of entry.name === 'index.html' ? ['/', '/index.html'] : [`/${entry.name}`]) files.set(url, file);
  }
  const assets = await dashboardAssets(undefined, names.some((entry) => entry.name === 'style.css') ? `${dir}/style.css` : undefined);
  files.set('/dashboard.js', await staticFile(Buffer.from(assets.js), CONTENT_TYPES['.js'] as string, true));
  files.set('/dashboard.css', await staticFile(Buffer.from(assets.css), CONTENT_TYPES['.css'] as string, true));
  for (const [url, file] of files) {
    // compress: false: @fastify/compress would compress these again on every request.
    app.get(url, { schema: { hide: true }, compress: false }, (request, reply) => {
      const { variant, coding } = variantFor(file, request);
      reply.header('cache-control', 'no-cache').header('vary', 'accept-encoding').header('etag', variant.etag);
      if (matchesIfNoneMatch(request.headers['if-none-match'], file.tag)) {
        reply.code(304).send();
        return;
      }
      if (coding) reply.header('content-encoding', coding);
      reply.header('content-type', file.contentType).send(variant.body);
    });
  }
};
