import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BASE_LANGUAGE, loadLanguages } from '@flowpilot/i18n';
import type { Language } from '@flowpilot/i18n';
import { collectReportData } from './collect.ts';
import type { MetricsSource } from './metrics-source.ts';
import { renderReportPdf } from './pdf.ts';
import type { ReportPilot, ReportProgress } from './types.ts';

export interface PilotReportOptions {
  pilot: ReportPilot;
  /** Where the numbers come from: the API in process, or over HTTP (createHttpMetricsSource). */
  metrics: MetricsSource;
  fromMs: number;
  toMs: number;
  /** A strings file's code (`en`, `ru`, …); default English. */
  lang?: string;
  softwareVersion: string;
  /** The software's git commit (FLOWPILOT_COMMIT, else `git rev-parse HEAD` where a .git exists); default `unknown`. */
  commit?: string;
  /** SHA-256 (hex) of the bytes of the pilot file the caller loaded; default null (printed `n/a`). */
  pilotFileSha256?: string | null;
  dataSource: string;
  /** Epoch ms now: when the data is read and the report generated (STYLE habit 7). */
  clock?: () => number;
  onProgress?: (progress: ReportProgress) => void;
  /** The languages to choose from; default: every strings file of @flowpilot/i18n. */
  languages?: readonly Language[];
}

/** The languages a report can be written in, read once per process (the strings files do not change while it runs). */
let cachedLanguages: Language[] | undefined;
export function reportLanguages(): Language[] {
  cachedLanguages ??= loadLanguages();
  return cachedLanguages;
}

/** The language with `code`, or an error that lists the ones there are. */
export function resolveLanguage(code: string | undefined, languages: readonly Language[] = reportLanguages()): { language: Language; base: Language } {
  const base = languages.find((l) => l.code === BASE_LANGUAGE) ?? (languages[0] as Language);
  const language = languages.find((l) => l.code === (code ?? BASE_LANGUAGE));
  if (!language) throw new RangeError(`No strings for language "${code}"; there are: ${languages.map((l) => l.code).join(', ')}`);
  return { language, base };
}

/** Fetches the metrics of the period and of each local day, and renders the PDF report (PDF/A-2b). */
export async function createPilotReportPdf(options: PilotReportOptions): Promise<Buffer> {
  const { language, base } = resolveLanguage(options.lang, options.languages);
  const clock = options.clock ?? Date.now;
  const data = await collectReportData({ pilot: options.pilot, metrics: options.metrics, fromMs: options.fromMs, toMs: options.toMs, clock, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  const total = 1 + data.days.length;
  options.onProgress?.({ done: total, total, stage: 'render' });
  return renderReportPdf(data, {
    language,
    baseLanguage: base,
    generatedAtMs: clock(),
    softwareVersion: options.softwareVersion,
    commit: options.commit ?? 'unknown',
    pilotFileSha256: options.pilotFileSha256 ?? null,
    dataSource: options.dataSource,
  });
}

export interface WriteReportOptions extends PilotReportOptions {
  format: 'pdf' | 'csv';
  /** The file to write; written to `<out>.partial` first and renamed, so a failed run never leaves half a report. */
  out: string;
  /** For `csv`: the body of `GET /api/v1/reports/metrics.csv?from&to`. */
  fetchMetricsCsv?: (window: { fromMs: number; toMs: number }) => Promise<string | Uint8Array>;
}

/**
 * The core of `flowpilot report --from T --to T --format pdf|csv --out FILE`: the CLI parses its
 * flags, passes `metrics: createHttpMetricsSource(api, { token })` and draws `onProgress` as a progress bar.
 * Resolves with the bytes written.
 */
export async function writeReport(options: WriteReportOptions): Promise<{ out: string; bytes: number }> {
  let body: Uint8Array;
  if (options.format === 'pdf') {
    body = await createPilotReportPdf(options);
  } else {
    if (!options.fetchMetricsCsv) throw new Error('writeReport: format "csv" needs fetchMetricsCsv');
    options.onProgress?.({ done: 0, total: 1, stage: 'metrics' });
    const csv = await options.fetchMetricsCsv({ fromMs: options.fromMs, toMs: options.toMs });
    body = typeof csv === 'string' ? Buffer.from(csv, 'utf8') : csv;
    options.onProgress?.({ done: 1, total: 1, stage: 'metrics' });
  }
  options.onProgress?.({ done: 1, total: 1, stage: 'write' });
  await mkdir(dirname(options.out), { recursive: true });
  const partial = `${options.out}.partial`;
  await writeFile(partial, body);
  await rename(partial, options.out);
  return { out: options.out, bytes: body.byteLength };
}

/**
 * A one-line text progress bar for a terminal, e.g. `[██████░░░░░░] 12/24 metrics`; the CLI
 * writes it with `\r` to stderr when stderr is a TTY.
 */
export function progressBar(progress: ReportProgress, widthChars = 24): string {
  const ratio = progress.total === 0 ? 1 : Math.min(1, progress.done / progress.total);
  const filled = Math.round(ratio * widthChars);
  return `[${'█'.repeat(filled)}${'░'.repeat(widthChars - filled)}] ${progress.done}/${progress.total} ${progress.stage}`;
}
