import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLanguages } from '@flowpilot/i18n';
import type { Language } from '@flowpilot/i18n';
import { FlowPilotError } from '@flowpilot/schema';
import { afterAll, describe, expect, it } from 'vitest';
import { DEJAVU_SANS, NANUM_GOTHIC, resolveReportFonts } from './fonts.ts';
import type { ReportFontOptions } from './fonts.ts';
import { glyphsByFont } from './pdf-glyphs.ts';
import { renderReportPdf } from './pdf.ts';
import { fixtureReportData } from './test-support.ts';
import type { ReportData } from './types.ts';

// The report's fonts (issue 14): each language's own family, the other as the fallback for a
// text in another script, and an error that names the package when a language's own is missing.
// NanumGothic comes from Debian's fonts-nanum: the tests that need it run where it is installed
// (test/i18n-pdf.test.ts installs it).

const nanumInstalled = NANUM_GOTHIC.dirs.some((dir) => existsSync(join(dir, NANUM_GOTHIC.files.regular)));
const emptyDir = mkdtempSync(join(tmpdir(), 'flowpilot-no-fonts-'));
afterAll(() => rmSync(emptyDir, { recursive: true, force: true }));
/** Fonts as on a machine without fonts-nanum. */
const withoutNanum: Partial<ReportFontOptions> = { languageFamilies: { ko: { ...NANUM_GOTHIC, dirs: [emptyDir] } }, fallbacks: [DEJAVU_SANS, { ...NANUM_GOTHIC, dirs: [emptyDir] }] };

const KAZAKH = 'Алматы су арнасы: өлшегіштерді сынау (ә ғ қ ң ө ұ ү һ і)';
const HANGUL = '한국 계량기 제조사의 시험 대상 유량계';

describe('report fonts', () => {
  it('writes English, Russian and Kazakh in DejaVu Sans, shipped with the package', () => {
    for (const code of ['en', 'ru', 'kk']) {
      const fonts = resolveReportFonts(code, withoutNanum);
      expect([fonts.regular, fonts.bold]).toEqual(['DejaVuSans', 'DejaVuSans-Bold']);
      expect(fonts.fontFor(KAZAKH)).toBe('DejaVuSans');
      expect(fonts.missingGlyphs(KAZAKH, true)).toEqual([]);
    }
  });

  it('answers a Korean report without NanumGothic with an error that names the package to install', () => {
    let error: unknown;
    try {
      resolveReportFonts('ko', withoutNanum);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(FlowPilotError);
    expect(error).toMatchObject({ code: 'ERR_REPORT_FONT', status: 503 });
    expect((error as Error).message).toContain("install Debian's fonts-nanum package (apt-get install fonts-nanum)");
    expect((error as Error).message).toContain(emptyDir);
  });

  it('without a fallback, says which characters a text in another script lacks', () => {
    const fonts = resolveReportFonts('kk', withoutNanum);
    expect(fonts.fontFor('유량계')).toBe('DejaVuSans');
    expect(fonts.missingGlyphs('유량계 F-1')).toEqual(['유', '량', '계']);
  });

  describe.runIf(nanumInstalled)('with fonts-nanum installed', () => {
    it('writes Korean in NanumGothic, and a text in Kazakh in DejaVu Sans', () => {
      const fonts = resolveReportFonts('ko');
      expect([fonts.regular, fonts.bold]).toEqual(['NanumGothic', 'NanumGothic-Bold']);
      expect(fonts.fontFor(HANGUL)).toBe('NanumGothic');
      expect(fonts.fontFor(HANGUL, true)).toBe('NanumGothic-Bold');
      // NanumGothic has Russian's Cyrillic but not Kazakh's own letters.
      expect(fonts.fontFor('Алматы, насосная станция 3')).toBe('NanumGothic');
      expect(fonts.fontFor(KAZAKH)).toBe('DejaVuSans');
      expect(fonts.fontFor(KAZAKH, true)).toBe('DejaVuSans-Bold');
    });

    it('writes a meter label in Hangul in the Kazakh report in NanumGothic', () => {
      const fonts = resolveReportFonts('kk');
      expect(fonts.fontFor(HANGUL)).toBe('NanumGothic');
      expect(fonts.missingGlyphs(HANGUL)).toEqual([]);
      // A line no family has whole is drawn run by run.
      expect(fonts.runs(`${HANGUL} · ${KAZAKH}`)).toEqual([
        { text: `${HANGUL} · `, font: 'NanumGothic' },
        { text: KAZAKH, font: 'DejaVuSans' },
      ]);
      expect(fonts.runs(KAZAKH, true)).toEqual([{ text: KAZAKH, font: 'DejaVuSans-Bold' }]);
    });

    const languages = loadLanguages();
    const en = languages.find((l) => l.code === 'en') as Language;
    // The pilot of this issue: a Kazakh utility's names, a Korean maker's labels.
    const base = fixtureReportData(null);
    const mixed: ReportData = {
      ...base,
      pilot: { ...base.pilot, name: KAZAKH, meters: base.pilot.meters.map((m, i) => ({ ...m, label: i % 2 === 0 ? `${HANGUL} ${m.id}` : `Өлшегіш ${m.id}` })) },
    };

    it.each(languages.map((l) => [l.code, l] as const))('renders a report in %s with every glyph, Kazakh and Hangul names included', async (_code, language) => {
      const pdf = await renderReportPdf(mixed, { language, baseLanguage: en, generatedAtMs: Date.parse('2026-11-23T01:00:00Z'), softwareVersion: '0.1.0', commit: 'unknown', pilotFileSha256: null, dataSource: 'fixture' });
      const fonts = glyphsByFont(pdf);
      expect(fonts.filter((f) => f.notdef > 0)).toEqual([]);
      // Both families drew: the language's own for its words, the other for the names.
      expect(fonts.map((f) => f.font.replace(/^[A-Z]{6}\+/, '')).sort()).toEqual(expect.arrayContaining(['DejaVuSans', 'NanumGothic']));
    });

    it('sees the tofu a report would have without the fallback', async () => {
      const ko = languages.find((l) => l.code === 'ko') as Language;
      expect(resolveReportFonts('ko', { fallbacks: [] }).missingGlyphs(KAZAKH).sort()).toEqual(['ғ', 'і', 'қ', 'ң', 'ү', 'ұ', 'һ', 'ә', 'ө'].sort());
      const pdf = await renderReportPdf(mixed, { language: ko, baseLanguage: en, generatedAtMs: 0, softwareVersion: '0.1.0', commit: 'unknown', pilotFileSha256: null, dataSource: 'fixture', fonts: { fallbacks: [] } });
      const nanum = glyphsByFont(pdf).filter((f) => f.font.endsWith('+NanumGothic'));
      expect(nanum).toHaveLength(1);
      // Nine Kazakh letters in the pilot's name, on the cover (twice) and in every page's footer.
      expect(nanum[0]?.notdef).toBeGreaterThanOrEqual(9 * 3);
    });
  });
});
