import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { BASE_LANGUAGE, createTranslator, formatDate, formatDateTime, formatErrorPct, formatLatencyMs, formatMpePct, formatNumber, formatRatioPct, loadLanguages } from '@flowpilot/i18n';
import type { Language } from '@flowpilot/i18n';
import { createHttpMetricsSource, createPilotReportPdf, NANUM_GOTHIC, resolveReportFonts } from '@flowpilot/report';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { glyphsByFont } from '../packages/report/src/pdf-glyphs.ts';
import { installErrorHandlers } from '../services/api/src/api-errors.ts';
import { ARTIFACTS_DIR, ensureDebianTool } from './helpers/browser.ts';
import { startDashboardWorld } from './helpers/dashboard-world.ts';
import type { DashboardWorld } from './helpers/dashboard-world.ts';

// Issue 14: the evaluator's PDF in every language of the strings files, from the real API
// (GET /api/v1/reports/pilot.pdf?lang=…), with no glyph missing. Three checks, each catching
// what the others cannot:
// - every string of a language (and its numbers and dates) has a glyph in the font its report
//   draws it with (fontkit's cmap), whether or not this pilot's report happens to print it;
// - the PDF's text operators draw no glyph 0 (`.notdef`, tofu) in any font, charts included;
// - the fonts are embedded as subsets (PDF/A-2b), and pdftotext reads the language's words back.

const DAY_MS = 86_400_000;
const TZ_OFFSET_MS = 5 * 3_600_000; // Asia/Almaty
const today = new Date(Date.now() + TZ_OFFSET_MS).toISOString().slice(0, 10);
const fromMs = Date.parse(`${today}T00:00:00Z`) - TZ_OFFSET_MS - 3 * DAY_MS;
const toMs = fromMs + 2 * DAY_MS;
const NANUM_FILE = join(NANUM_GOTHIC.dirs[0] as string, NANUM_GOTHIC.files.regular);

const languages = loadLanguages();
const base = languages.find((l) => l.code === BASE_LANGUAGE) as Language;
/** The family each language's report is written in (packages/report/src/fonts.ts). */
const OWN_FAMILY: Record<string, string> = { en: 'DejaVuSans', ru: 'DejaVuSans', kk: 'DejaVuSans', ko: 'NanumGothic' };

let world: DashboardWorld;
beforeAll(async () => {
  ensureDebianTool('pdftotext', 'poppler-utils');
  // NanumGothic (Hangul) is Debian's fonts-nanum: installed here when missing, as poppler is.
  ensureDebianTool(NANUM_FILE, 'fonts-nanum');
  world = await startDashboardWorld({ fromMs: fromMs - 60_000, toMs: toMs + 60_000 });
});
afterAll(async () => {
  await world?.close();
});

function poppler(tool: 'pdftotext' | 'pdffonts', pdf: Buffer, name: string): string {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = join(ARTIFACTS_DIR, `${name}.pdf`);
  writeFileSync(file, pdf);
  return execFileSync(tool, tool === 'pdftotext' ? ['-enc', 'UTF-8', file, '-'] : [file], { encoding: 'utf8' });
}

/** pdffonts' rows: name, embedded, subset. */
function embeddedFonts(pdf: Buffer, name: string): { name: string; emb: string; sub: string }[] {
  return poppler('pdffonts', pdf, name)
    .split('\n')
    .slice(2)
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const cells = line.trim().split(/\s+/);
      // name, type (one or two words), encoding, emb, sub, uni, object, generation
      return { name: cells[0] as string, emb: cells.at(-5) as string, sub: cells.at(-4) as string };
    });
}

/** The family of a subset font's name, e.g. `BZZZZZ+NanumGothicBold` → `NanumGothic`. */
const familyOf = (font: string): string => font.replace(/^[A-Z]{6}\+/, '').replace(/-?Bold$/, '');

describe('every string has a glyph in the font its report draws it with', () => {
  it.each(languages.map((l) => [l.code, l] as const))('%s', (code, language) => {
    const fonts = resolveReportFonts(code);
    const locale = language.locale;
    const ms = Date.parse('2026-11-24T22:12:00Z');
    // The strings (parameters out) and the locale's numbers, signs, percentages and dates.
    const texts = [
      ...Object.entries(language.strings).filter(([key]) => !key.startsWith('meta.')).map(([, text]) => text.replace(/\{\w+\}/g, '')),
      formatNumber(locale, -1234567.891, 3),
      formatErrorPct(locale, -1.5),
      formatErrorPct(locale, 1.5),
      formatMpePct(locale, 2.5),
      formatRatioPct(locale, 0.9931),
      formatLatencyMs(locale, 9999),
      formatDateTime(locale, 'Asia/Almaty', ms, true),
      formatDate(locale, 'Asia/Almaty', ms),
      new Intl.DateTimeFormat(locale, { timeZone: 'Asia/Almaty', day: '2-digit', month: '2-digit' }).format(ms),
    ];
    for (const text of texts) {
      for (const bold of [false, true]) {
        // Its own family draws it whole (a table cell is drawn in one font), with every glyph.
        expect(familyOf(fonts.fontFor(text, bold)), `${code} ${bold ? 'bold' : 'regular'}: ${text}`).toBe(OWN_FAMILY[code]);
        expect(fonts.missingGlyphs(text, bold), `${code} ${bold ? 'bold' : 'regular'}: ${text}`).toEqual([]);
      }
    }
  });
});

describe('GET /api/v1/reports/pilot.pdf?lang=…', () => {
  it.each(languages.map((l) => [l.code, l] as const))('%s: every font embedded as a subset, no glyph missing, the language\'s words read back', async (code, language) => {
    const response = await fetch(`${world.baseUrl}/api/v1/reports/pilot.pdf?from=${fromMs}&to=${toMs}&lang=${code}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toContain(`-${code}.pdf`);
    const pdf = Buffer.from(await response.arrayBuffer());

    const fonts = embeddedFonts(pdf, `i18n-report-${code}`);
    expect(fonts.length).toBeGreaterThan(0);
    for (const font of fonts) expect([font.name, font.emb, font.sub]).toEqual([font.name, 'yes', 'yes']);
    expect(new Set(fonts.map((f) => familyOf(f.name)))).toEqual(new Set([OWN_FAMILY[code]]));

    const drawn = glyphsByFont(pdf);
    expect(drawn.reduce((sum, f) => sum + f.glyphs, 0)).toBeGreaterThan(5000);
    expect(drawn.filter((f) => f.notdef > 0), `${code}: glyphs drawn as .notdef`).toEqual([]);

    const t = createTranslator(language, base);
    const text = poppler('pdftotext', pdf, `i18n-report-${code}`).replace(/\s+/g, ' ');
    for (const key of ['pdf.title', 'pdf.summary', 'pdf.evidence', 'pdf.budget', 'trace.title', 'pdf.methodology', 'pdf.signature', 'curve.measured']) expect(text, `${code} ${key}`).toContain(t(key));
    expect(text).toContain(t('verdict.fail'));
    // The footer's page numbers, in the language's words: "Page 1 of 14", "1 / 14쪽", "Бет 1 / 15".
    const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(text).toMatch(new RegExp(escape(t('pdf.page', { n: 1, total: '#' })).replace('#', '\\d+')));
  });

  it('is 400 for a language it has no strings for, naming those it has', async () => {
    const response = await fetch(`${world.baseUrl}/api/v1/reports/pilot.pdf?from=${fromMs}&to=${toMs}&lang=fr`);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ERR_VALIDATION');
    for (const code of ['en', 'kk', 'ko', 'ru']) expect(body.error.message).toContain(`"${code}"`);
  });
});

describe('names from the pilot file in another script', () => {
  // This pilot: a Kazakh utility names the pilot and its sites, a Korean maker labels its meters.
  const KAZAKH = 'Алматы су арнасы: шығын өлшегіштерді сынау';
  const HANGUL = '시험용 전자식 유량계';

  it.each(['ko', 'kk'])('the %s report draws a Kazakh pilot name and Hangul meter labels with no glyph missing', async (code) => {
    const pilot = { ...world.pilot.pilot, name: KAZAKH, meters: world.pilot.meters.map((m) => ({ ...m, label: m.role === 'test' ? `${HANGUL} ${m.id}` : `Өлшеу нүктесі ${m.id}` })) };
    const pdf = await createPilotReportPdf({ pilot, metrics: createHttpMetricsSource(world.baseUrl), fromMs, toMs, lang: code, softwareVersion: '0.1.0', dataSource: world.baseUrl });
    const drawn = glyphsByFont(pdf);
    expect(drawn.filter((f) => f.notdef > 0)).toEqual([]);
    // Both families drew, both embedded as subsets.
    expect(new Set(drawn.map((f) => familyOf(f.font)))).toEqual(new Set(['DejaVuSans', 'NanumGothic']));
    for (const font of embeddedFonts(pdf, `i18n-report-mixed-${code}`)) expect([font.name, font.emb, font.sub]).toEqual([font.name, 'yes', 'yes']);
    const text = poppler('pdftotext', pdf, `i18n-report-mixed-${code}`).replace(/\s+/g, ' ');
    expect(text).toContain(KAZAKH);
    expect(text).toContain(`${HANGUL} D-DUT1`);
  });
});

describe('a server without the Korean font', () => {
  const emptyDir = mkdtempSync(join(tmpdir(), 'flowpilot-no-nanum-'));
  afterAll(() => rmSync(emptyDir, { recursive: true, force: true }));

  it('answers 503 ERR_REPORT_FONT naming the Debian package to install', async () => {
    // The API's own error handler, with the report's fonts looked for where there are none.
    const app = Fastify();
    installErrorHandlers(app);
    app.get('/report', async () => {
      resolveReportFonts('ko', { languageFamilies: { ko: { ...NANUM_GOTHIC, dirs: [emptyDir] } } });
      return 'unreachable';
    });
    const response = await app.inject({ method: 'GET', url: '/report' });
    await app.close();
    expect(response.statusCode).toBe(503);
    const body = response.json<{ error: { code: string; message: string } }>();
    expect(body.error.code).toBe('ERR_REPORT_FONT');
    expect(body.error.message).toContain("install Debian's fonts-nanum package (apt-get install fonts-nanum)");
    expect(body.error.message).toContain('no restart is needed');
  });
});
