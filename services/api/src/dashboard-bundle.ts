import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { loadLanguages } from '@flowpilot/i18n';
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';

/** The dashboard's TypeScript (browser code, its own tsconfig with the DOM library). */
export const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));

export interface DashboardAssets {
  js: string;
  css: string;
}

/**
 * Every strings file of @flowpilot/i18n as the module `flowpilot:strings`, read when the bundle is
 * built: adding a language is adding a JSON file, nothing in the dashboard changes.
 */
const stringsPlugin: Plugin = {
  name: 'flowpilot-strings',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^flowpilot:strings$/ }, (args) => ({ path: args.path, namespace: 'flowpilot-strings' }));
    pluginBuild.onLoad({ filter: /.*/, namespace: 'flowpilot-strings' }, () => ({
      contents: `export default ${JSON.stringify(loadLanguages().map((l) => ({ code: l.code, strings: l.strings })))};`,
      loader: 'js',
    }));
  },
};

/**
 * The workspace's own packages are pure modules (STYLE "The shape of the house": no I/O at import),
 * so the bundle keeps only what the dashboard uses of them: importing one function of
 * @flowpilot/metrics must not pull in zod and every schema of @flowpilot/schema.
 */
const workspacePackagesArePure: Plugin = {
  name: 'flowpilot-pure-packages',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^@flowpilot\// }, async (args) => {
      if (args.pluginData === 'resolving') return undefined;
      const resolved = await pluginBuild.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'resolving' });
      return resolved.errors.length > 0 ? resolved : { ...resolved, sideEffects: false };
    });
  },
};

/**
 * Bundles dashboard/main.ts with esbuild (already the project's TypeScript runner, through tsx)
 * in memory: no build output to commit or to go stale. uPlot's stylesheet is prepended to ours.
 */
export async function buildDashboardAssets(dashboardDir = DASHBOARD_DIR, styleFile?: string): Promise<DashboardAssets> {
  const result = await build({
    entryPoints: [`${dashboardDir}/main.ts`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    sourcemap: false,
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    plugins: [stringsPlugin, workspacePackagesArePure],
  });
  const js = result.outputFiles[0]?.text ?? '';
  const require = createRequire(import.meta.url);
  const uplotCss = await readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
  const ownCss = styleFile ? await readFile(styleFile, 'utf8') : '';
  return { js, css: `${uplotCss}\n${ownCss}` };
}

const cache = new Map<string, Promise<DashboardAssets>>();

/** One build per process and folder: every createApi in a test run shares it (the sources do not change while it runs). */
export function dashboardAssets(dashboardDir = DASHBOARD_DIR, styleFile?: string): Promise<DashboardAssets> {
  const key = `${dashboardDir}|${styleFile ?? ''}`;
  let assets = cache.get(key);
  if (!assets) {
    assets = buildDashboardAssets(dashboardDir, styleFile);
    // A failed build is not cached: the next start tries again.
    assets.catch(() => cache.delete(key));
    cache.set(key, assets);
  }
  return assets;
}
