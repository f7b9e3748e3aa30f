import { createTranslator, formatDate, formatDateTime, formatDurationMs, formatErrorPct, formatMpePct, formatNumber, formatRatioPct, formatUtcOffset } from '@flowpilot/i18n';
import type { Language, Translate } from '@flowpilot/i18n';
import { EXCLUSION_REASONS, MIN_REPEATABILITY_DAYS } from '@flowpilot/metrics';
import type { AccuracyEvidence, RegisterResolution } from '@flowpilot/metrics';
import PDFDocument from 'pdfkit';
import SVGtoPDF from 'svg-to-pdfkit';
import { resolveReportFonts } from './fonts.ts';
import type { ReportFontOptions, ReportFonts } from './fonts.ts';
import { kpiRows } from './kpi.ts';
import { barChartSvg, errorCurveSvg } from './svg-charts.ts';
import type { AccuracyResult, ReportData, ReportMeterMetrics, ReportProvenance } from './types.ts';

/**
 * The fonts (fonts.ts): each language's own family (DejaVu Sans, shipped; NanumGothic for Korean,
 * from Debian's fonts-nanum), and the other as the fallback for a text in another script (a pilot
 * named in Kazakh in the Korean report). PDF/A embeds every font it uses, as a subset; pdfkit's
 * built-in Helvetica could not be embedded, so it is never used.
 */
export { FONTS_DIR } from './fonts.ts';

export interface RenderOptions extends ReportProvenance {
  language: Language;
  /** The base language for strings a translation lacks. */
  baseLanguage: Language;
  /** When the report was generated, epoch ms (injected: STYLE habit 7). */
  generatedAtMs: number;
  /** Where to find the fonts (fonts.ts DEFAULT_REPORT_FONT_OPTIONS unless given). */
  fonts?: Partial<ReportFontOptions>;
}

const PAGE = { width: 595.28, height: 841.89, margin: 50 };
const CONTENT_W = PAGE.width - 2 * PAGE.margin;
const BOTTOM = PAGE.height - PAGE.margin;
/** Each verdict its own colour: `inconclusive` is neither a pass nor a fail, nor a lack of data. */
const VERDICT_COLORS = { pass: '#15803d', fail: '#b91c1c', inconclusive: '#7c3aed', insufficient: '#b45309' } as const;
type VerdictName = keyof typeof VERDICT_COLORS;
const VERDICTS = Object.keys(VERDICT_COLORS) as VerdictName[];

type Doc = PDFKit.PDFDocument;

interface Cell {
  text: string;
  sub?: string;
  color?: string;
  bold?: boolean;
  /** A font size of its own (a SHA-256 must fit on one line). */
  size?: number;
}
interface Column {
  header: string;
  width: number;
  align?: 'left' | 'right' | 'center';
}

/**
 * pdfkit writes the title into the XMP metadata as it is: XML's own characters would break the
 * packet that PDF/A requires, so they are replaced by their full-width look-alikes there.
 */
const xmpSafe = (text: string): string => text.replace(/[<>&]/g, (c) => ({ '<': '＜', '>': '＞', '&': '＆' })[c] as string);

/**
 * The evaluator's report as an archival PDF (PDF/A-2b: fonts embedded and subset, XMP metadata,
 * an sRGB output intent): cover, summary of the verdicts, one section per meter (for a test meter
 * the evidence of each zone's and test-flow bin's verdict, the error curve against each bin's MPE,
 * exclusions, registers and the reference's calibration; daily volume and completeness; key
 * figures), data-quality notes, traceability, the methodology of SPEC section 4 in words, and a
 * signature block.
 */
export async function renderReportPdf(data: ReportData, options: RenderOptions): Promise<Buffer> {
  const { language } = options;
  const t = createTranslator(language, options.baseLanguage);
  const locale = language.locale;
  const tz = data.pilot.timezone;
  // Before the document: a missing font is an error that names the package to install (ERR_REPORT_FONT).
  const fonts = resolveReportFonts(language.code, options.fonts);
  const doc = new PDFDocument({
    size: 'A4',
    margin: PAGE.margin,
    bufferPages: true,
    pdfVersion: '1.7',
    subset: 'PDF/A-2b',
    // The default font, set before the first page: pdfkit would otherwise start with Helvetica, which PDF/A cannot embed.
    font: fonts.regularFile,
    info: {
      Title: xmpSafe(`${t('pdf.title')}: ${data.pilot.name}`),
      Author: 'FlowPilot',
      Subject: xmpSafe(data.pilot.id),
      Creator: xmpSafe(`FlowPilot ${options.softwareVersion}`),
      // The report's own time, so the Info dictionary and the XMP packet (which PDF/A requires to agree) both carry it.
      CreationDate: new Date(options.generatedAtMs),
    },
    lang: language.code,
    displayTitle: true,
  });
  fonts.registerWith(doc);
  doc.font(fonts.regular);
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const finished = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  const ctx: Ctx = { doc, t, locale, tz, data, options, fonts };
  cover(ctx);
  summary(ctx);
  for (const meter of data.pilot.meters) meterSection(ctx, meter.id);
  dataQuality(ctx);
  traceability(ctx);
  methodology(ctx);
  signatures(ctx);
  footers(ctx);
  doc.end();
  return finished;
}

interface Ctx {
  doc: Doc;
  t: Translate;
  locale: string;
  tz: string;
  data: ReportData;
  options: RenderOptions;
  fonts: ReportFonts;
}

/** The face to draw `text` in: the language's own, or a fallback that has every glyph of it. */
const face = (ctx: Ctx, text: string, bold = false): string => ctx.fonts.fontFor(text, bold);

function ensureSpace(doc: Doc, heightPt: number): void {
  if (doc.y + heightPt > BOTTOM) doc.addPage();
}

function heading(ctx: Ctx, text: string, size = 15): void {
  const { doc } = ctx;
  ensureSpace(doc, size * 4);
  doc.moveDown(0.4).font(face(ctx, text, true)).fontSize(size).fillColor('#111827').text(text, PAGE.margin, doc.y, { width: CONTENT_W });
  doc.moveDown(0.3).font(ctx.fonts.regular).fontSize(9.5);
}

function paragraph(ctx: Ctx, text: string, size = 9.5, color = '#111827'): void {
  const { doc } = ctx;
  // A line that joins a name from the pilot file in another script to the language's words is drawn run by run.
  const [first, ...rest] = ctx.fonts.runs(text);
  doc.font(first?.font ?? ctx.fonts.regular).fontSize(size);
  ensureSpace(doc, doc.heightOfString(text, { width: CONTENT_W }) + 4);
  doc.fillColor(color).text(first?.text ?? '', PAGE.margin, doc.y, { width: CONTENT_W, lineGap: 1.5, continued: rest.length > 0 });
  rest.forEach((run, i) => doc.font(run.font).text(run.text, { width: CONTENT_W, lineGap: 1.5, continued: i < rest.length - 1 }));
  doc.moveDown(0.5);
}

/** A table that breaks across pages, repeating its header. */
function table(ctx: Ctx, columns: readonly Column[], rows: ReadonlyArray<ReadonlyArray<Cell | string>>, fontSize = 8.5): void {
  const { doc } = ctx;
  const padX = 4;
  const padY = 3.5;
  const cellHeight = (cell: Cell, width: number): number => {
    const size = cell.size ?? fontSize;
    doc.font(face(ctx, cell.text, cell.bold)).fontSize(size);
    let h = doc.heightOfString(cell.text || ' ', { width: width - 2 * padX });
    if (cell.sub) {
      doc.font(face(ctx, cell.sub)).fontSize(size - 1.5);
      h += doc.heightOfString(cell.sub, { width: width - 2 * padX });
    }
    return h + 2 * padY;
  };
  const drawRow = (cells: readonly Cell[], header: boolean): void => {
    const height = Math.max(...cells.map((cell, i) => cellHeight(cell, (columns[i] as Column).width)));
    if (doc.y + height > BOTTOM) {
      doc.addPage();
      if (!header) drawRow(columns.map((c) => ({ text: c.header, bold: true })), true);
    }
    const top = doc.y;
    if (header) doc.rect(PAGE.margin, top, CONTENT_W, height).fill('#f3f4f6');
    let x = PAGE.margin;
    cells.forEach((cell, i) => {
      const column = columns[i] as Column;
      const size = cell.size ?? fontSize;
      doc.font(face(ctx, cell.text, cell.bold || header)).fontSize(size).fillColor(cell.color ?? (header ? '#374151' : '#111827'));
      doc.text(cell.text, x + padX, top + padY, { width: column.width - 2 * padX, align: column.align ?? 'left' });
      if (cell.sub) doc.font(face(ctx, cell.sub)).fontSize(size - 1.5).fillColor('#6b7280').text(cell.sub, x + padX, doc.y, { width: column.width - 2 * padX, align: column.align ?? 'left' });
      x += column.width;
    });
    doc.moveTo(PAGE.margin, top + height).lineTo(PAGE.margin + CONTENT_W, top + height).lineWidth(0.4).strokeColor('#d1d5db').stroke();
    doc.x = PAGE.margin;
    doc.y = top + height;
  };
  drawRow(columns.map((c) => ({ text: c.header, bold: true })), true);
  for (const row of rows) drawRow(row.map((cell) => (typeof cell === 'string' ? { text: cell } : cell)), false);
  doc.moveDown(0.6);
}

/** A two-column table of figures and their values, the value column as wide as the page allows. */
function propertyTable(ctx: Ctx, rows: ReadonlyArray<readonly [string, Cell | string]>, labelWidth = 160, fontSize = 8.5): void {
  table(
    ctx,
    [
      { header: ctx.t('pdf.property'), width: labelWidth },
      { header: ctx.t('pdf.value'), width: CONTENT_W - labelWidth },
    ],
    rows.map(([label, value]) => [label, value]),
    fontSize,
  );
}

function svg(ctx: Ctx, markup: string, x: number, y: number, width: number, height: number): void {
  SVGtoPDF(ctx.doc, markup, x, y, {
    width,
    height,
    assumePt: true,
    // A chart's words are the language's own strings, numbers and meter ids: its own faces.
    fontCallback: (_family, bold) => (bold ? ctx.fonts.bold : ctx.fonts.regular),
    warningCallback: () => {},
  });
}

const iso = (ms: number): string => new Date(ms).toISOString();

const periodText = (ctx: Ctx): string => {
  const { fromMs, toMs } = ctx.data.window;
  return `${formatDateTime(ctx.locale, ctx.tz, fromMs)} – ${formatDateTime(ctx.locale, ctx.tz, toMs)}`;
};

const zoneLabel = (ctx: Ctx, atMs: number): string => `${ctx.tz} (UTC${formatUtcOffset(ctx.tz, atMs)})`;

/** The commit as the caller found it; `unknown` in the report's language. */
const commitText = (ctx: Ctx): string => (ctx.options.commit === 'unknown' || ctx.options.commit === '' ? ctx.t('trace.unknown') : ctx.options.commit);

function cover(ctx: Ctx): void {
  const { doc, t, data, options } = ctx;
  doc.font(ctx.fonts.regular).fontSize(10).fillColor('#6b7280').text('FlowPilot', PAGE.margin, PAGE.margin + 30);
  doc.moveDown(0.3).font(face(ctx, t('pdf.title'), true)).fontSize(20).fillColor('#111827').text(t('pdf.title'), { width: CONTENT_W });
  doc.moveDown(0.3).font(face(ctx, data.pilot.name)).fontSize(14).fillColor('#1f2937').text(data.pilot.name, { width: CONTENT_W });
  doc.moveDown(1.5);
  propertyTable(
    ctx,
    [
      [t('pdf.pilot'), `${data.pilot.name} (${data.pilot.id})`],
      [t('pdf.period'), periodText(ctx)],
      [t('pdf.timezone'), zoneLabel(ctx, data.window.fromMs)],
      [t('pdf.generatedAt'), `${formatDateTime(ctx.locale, ctx.tz, options.generatedAtMs, true)} (${ctx.tz})`],
      [t('pdf.version'), t('pdf.softwareWithCommit', { version: options.softwareVersion, commit: commitText(ctx) })],
      [t('pdf.dataSource'), options.dataSource],
    ],
    140,
    9.5,
  );
  heading(ctx, t('pdf.meters'), 12);
  table(
    ctx,
    [
      { header: t('kpi.meter'), width: 150 },
      { header: t('meter.role'), width: 120 },
      { header: t('meter.site'), width: 50 },
      { header: 'DN · Q3 · R · class', width: CONTENT_W - 320 },
    ],
    data.pilot.meters.map((m) => [
      { text: m.id, sub: [m.label, m.serial ? `S/N ${m.serial}` : null].filter(Boolean).join(' · ') },
      { text: t(`role.${m.role}`), sub: m.reference ? t('acc.reference', { id: m.reference }) : '' },
      m.site,
      [m.technology, m.dn ? `DN ${m.dn}` : null, m.q3 ? `Q3 ${m.q3} m³/h` : null, m.r ? `R ${m.r}` : null, m.accuracyClass ? t('acc.class', { n: m.accuracyClass }) : null]
        .filter(Boolean)
        .join(' · ') || '—',
    ]),
  );
}

function metricsOf(ctx: Ctx, meterId: string): ReportMeterMetrics | undefined {
  return ctx.data.meters.find((m) => m.meterId === meterId);
}

/** The rule that decided a verdict (packages/metrics conformity.ts DecisionRule), in words. */
function ruleText(t: Translate, rule: string, minIntervals: number): string {
  if (rule === 'intervals') return t('rule.intervals', { n: minIntervals });
  if (rule === 'simple acceptance') return t('rule.simpleAcceptance');
  if (rule === 'guarded acceptance') return t('rule.guardedAcceptance');
  if (rule === 'zones') return t('rule.zones');
  if (rule.startsWith('bin ')) return t('rule.bin', { bin: rule.slice('bin '.length) });
  return rule;
}

function verdictCell(ctx: Ctx, zone: { verdict: VerdictName; error: number | null; mpe: number; intervals: number } | undefined): Cell {
  if (!zone) return { text: '—' };
  return {
    text: ctx.t(`verdict.${zone.verdict}`),
    color: VERDICT_COLORS[zone.verdict],
    bold: true,
    sub: `${formatErrorPct(ctx.locale, zone.error)} (${formatMpePct(ctx.locale, zone.mpe)}), n = ${zone.intervals}`,
  };
}

function summary(ctx: Ctx): void {
  const { doc, t } = ctx;
  doc.addPage();
  heading(ctx, t('pdf.summary'));
  paragraph(ctx, t('pdf.summaryIntro'));
  const testMeters = ctx.data.pilot.meters.filter((m) => m.role === 'test');
  if (testMeters.length === 0) {
    paragraph(ctx, t('results.noTestMeters'));
  } else {
    table(
      ctx,
      [
        { header: t('kpi.meter'), width: 85 },
        { header: t('zone.lowerShort'), width: 114 },
        { header: t('zone.upperShort'), width: 114 },
        { header: t('zone.overall'), width: 114 },
        { header: t('kpi.completeness'), width: CONTENT_W - 427, align: 'right' },
      ],
      testMeters.map((meter) => {
        const m = metricsOf(ctx, meter.id);
        const acc = m?.accuracy ?? null;
        return [
          { text: meter.id, sub: meter.reference ? t('acc.reference', { id: meter.reference }) : '' },
          verdictCell(ctx, acc?.lower),
          verdictCell(ctx, acc?.upper),
          verdictCell(ctx, acc?.overall),
          formatRatioPct(ctx.locale, m?.completeness ?? null),
        ];
      }),
      9,
    );
    // The four verdicts, each in its colour, with what it means (OIML G 19, SPEC section 4).
    const minIntervals = testMeters.map((meter) => metricsOf(ctx, meter.id)?.accuracy?.minIntervals).find((n) => n !== undefined) ?? 30;
    table(
      ctx,
      [
        { header: t('pdf.verdictLegend'), width: 150 },
        { header: '', width: CONTENT_W - 150 },
      ],
      VERDICTS.map((verdict) => [
        { text: t(`verdict.${verdict}`), color: VERDICT_COLORS[verdict], bold: true },
        t(`pdf.legend.${verdict}`, { n: minIntervals }),
      ]),
      8,
    );
  }
  // The other meters' completeness too: a reference with holes weakens its test meter's verdict.
  table(
    ctx,
    [
      { header: t('kpi.meter'), width: 175 },
      { header: t('kpi.completeness'), width: 80, align: 'right' },
      { header: t('kpi.delivery'), width: 80, align: 'right' },
      { header: t('kpi.gaps'), width: 60, align: 'right' },
      { header: t('kpi.volume'), width: CONTENT_W - 395, align: 'right' },
    ],
    ctx.data.pilot.meters.map((meter) => {
      const m = metricsOf(ctx, meter.id);
      return [
        { text: meter.id, sub: t(`role.${meter.role}`) },
        formatRatioPct(ctx.locale, m?.completeness ?? null),
        formatRatioPct(ctx.locale, m?.delivery ?? null),
        m ? String(m.gaps.count) : '—',
        formatNumber(ctx.locale, m?.volumeM3 ?? null, 1),
      ];
    }),
  );
}

/** One row of the evidence tables: a zone, a test-flow bin or the meter overall. */
interface EvidenceGroup {
  /** For the notes: the zone's short name, the bin's name, or "overall". */
  name: string;
  label: Cell;
  evidence: AccuracyEvidence;
}

/** Lower zone and its bin, upper zone and its bins, then overall: the order an evaluator reads a meter's verdict in. */
function evidenceGroups(ctx: Ctx, acc: AccuracyResult): EvidenceGroup[] {
  const { t, locale } = ctx;
  const flow = (q: number): string => formatNumber(locale, q, q < 10 ? 3 : 1);
  const groups: EvidenceGroup[] = [];
  for (const zone of ['lower', 'upper'] as const) {
    groups.push({ name: t(`zone.${zone}Short`), label: { text: t(`zone.${zone}`), bold: true }, evidence: acc[zone] });
    for (const bin of acc.bins.filter((b) => b.zone === zone)) {
      // R49's bins are [from, to) but upper-3 includes Q3 and upper-4 is (Q3, Q4] (SPEC section 4).
      const open = bin.bin === 'upper-4' ? '(' : '[';
      const close = bin.bin === 'upper-3' || bin.bin === 'upper-4' ? ']' : ')';
      groups.push({ name: bin.bin, label: { text: `   ${bin.bin}`, sub: `   ${open}${flow(bin.qFromM3h)}, ${flow(bin.qToM3h)}${close} ${t('pdf.unitM3h')}` }, evidence: bin });
    }
  }
  groups.push({ name: t('zone.overall'), label: { text: t('zone.overall'), bold: true }, evidence: acc.overall });
  return groups;
}

const pct = (locale: string, value: number, digits = 3): string => `${formatNumber(locale, value, digits)} %`;

/** Each zone's and bin's error, MPE, U and verdict with the rule that decided it. */
function evidenceTable(ctx: Ctx, acc: AccuracyResult, groups: readonly EvidenceGroup[]): void {
  const { t, locale } = ctx;
  heading(ctx, t('pdf.evidence'), 11);
  paragraph(ctx, t('pdf.evidenceIntro', { n: acc.minIntervals }), 8, '#374151');
  table(
    ctx,
    [
      // Wide enough for the Russian headers ("Погрешность") and verdicts on at most two lines.
      { header: t('pdf.group'), width: 90 },
      { header: t('pdf.intervalsNeeded', { n: acc.minIntervals }), width: 46, align: 'right' },
      { header: t('pdf.volumeRef'), width: 52, align: 'right' },
      { header: t('acc.error'), width: 66, align: 'right' },
      { header: t('acc.mpe'), width: 46, align: 'right' },
      { header: t('acc.uncertainty'), width: 48, align: 'right' },
      { header: t('pdf.uToMpe'), width: 38, align: 'right' },
      { header: t('pdf.verdictRule'), width: CONTENT_W - 386 },
    ],
    groups.map(({ label, evidence: e }) => [
      label,
      { text: String(e.intervals), ...(e.intervals < e.minIntervals ? { color: VERDICT_COLORS.insufficient } : {}) },
      formatNumber(locale, e.volumeRefM3, 3),
      formatErrorPct(locale, e.error),
      formatMpePct(locale, e.mpe),
      pct(locale, e.uncertainty.expandedPct),
      formatNumber(locale, e.uncertaintyToMpe, 2),
      { text: t(`verdict.${e.verdict}`), color: VERDICT_COLORS[e.verdict], bold: true, sub: ruleText(t, e.rule, e.minIntervals) },
    ]),
    7.5,
  );
}

/** U's three components and the water temperature of each zone and bin, then what was counted as 0. */
function budgetTable(ctx: Ctx, acc: AccuracyResult, groups: readonly EvidenceGroup[]): void {
  const { t, locale } = ctx;
  heading(ctx, t('pdf.budget'), 11);
  paragraph(ctx, t('pdf.budgetIntro'), 8, '#374151');
  const celsius = (value: number | null): string => formatNumber(locale, value, 1);
  table(
    ctx,
    [
      { header: t('pdf.group'), width: 90 },
      { header: 'u_ref', width: 42, align: 'right' },
      { header: 'u_res', width: 42, align: 'right' },
      { header: 'u_rep', width: 42, align: 'right' },
      { header: t('pdf.days'), width: 30, align: 'right' },
      { header: t('pdf.tempFrom'), width: 92 },
      { header: t('pdf.tempRange'), width: 90, align: 'right' },
      { header: t('pdf.tempWarm'), width: CONTENT_W - 428, align: 'right' },
    ],
    groups.map(({ label, evidence: e }) => [
      label,
      formatNumber(locale, e.uncertainty.referencePct, 3),
      formatNumber(locale, e.uncertainty.resolutionPct, 3),
      formatNumber(locale, e.uncertainty.repeatabilityPct, 3),
      String(e.uncertainty.days),
      t(`pdf.tempSource.${e.temperature.source}`),
      e.temperature.medianC === null ? '—' : `${celsius(e.temperature.minC)} / ${celsius(e.temperature.medianC)} / ${celsius(e.temperature.maxC)}`,
      formatRatioPct(locale, e.temperature.volumeShareAbove30C, 1),
    ]),
    7.5,
  );
  // What each component counted as 0 and why (packages/metrics conformity.ts writes the same notes in English into the JSON).
  const notes: string[] = [];
  if (acc.reference.expandedUncertaintyPct === null) notes.push(t('pdf.noteRefUncertainty'));
  if (acc.resolution.test.m3 === null) notes.push(t('pdf.noteResolutionTest'));
  if (acc.resolution.reference.m3 === null) notes.push(t('pdf.noteResolutionRef'));
  const fewDays = groups.filter((g) => g.evidence.uncertainty.days < MIN_REPEATABILITY_DAYS).map((g) => `${g.name} (${g.evidence.uncertainty.days})`);
  if (fewDays.length > 0) notes.push(t('pdf.noteRepeatability', { min: MIN_REPEATABILITY_DAYS, groups: fewDays.join(', ') }));
  paragraph(ctx, notes.length === 0 ? t('pdf.noNotes') : `${t('pdf.countedAsZero')}\n${notes.map((note) => `• ${note}`).join('\n')}`, 8, '#374151');
}

/** The paired intervals by reason of exclusion (the `excluded` column of intervals.csv), and how many counted. */
function exclusionsTable(ctx: Ctx, acc: AccuracyResult): void {
  const { t } = ctx;
  heading(ctx, t('acc.excluded'), 11);
  table(
    ctx,
    [
      { header: t('pdf.reason'), width: 250 },
      { header: t('pdf.exclusionCode'), width: 140 },
      { header: t('pdf.count'), width: CONTENT_W - 390, align: 'right' },
    ],
    [
      ...EXCLUSION_REASONS.map((reason) => [t(`exclusion.${reason}`), reason, String(acc.excluded[reason] ?? 0)]),
      [{ text: t('pdf.countedIntervals'), bold: true }, '', { text: String(acc.overall.intervals), bold: true }],
      [{ text: t('pdf.pairedIntervals'), bold: true }, '', { text: String(acc.pairedIntervals), bold: true }],
    ],
    8,
  );
}

/** The registers' resolutions (and where they came from) and the reference's calibration: the inputs of U. */
function registersTable(ctx: Ctx, acc: AccuracyResult): void {
  const { t, locale } = ctx;
  const notGiven = t('pdf.notGiven');
  const resolution = (r: RegisterResolution): Cell => {
    const source = t(`pdf.resolution.${r.source === 'pilot file' ? 'pilotFile' : r.source === 'inferred from data' ? 'inferred' : 'unknown'}`);
    return r.m3 === null ? { text: source } : { text: `${new Intl.NumberFormat(locale, { maximumSignificantDigits: 6 }).format(r.m3)} ${t('pdf.unitM3')}`, sub: source };
  };
  heading(ctx, t('pdf.registers'), 11);
  propertyTable(
    ctx,
    [
      [t('pdf.grid'), t('pdf.gridOf', { id: acc.grid === 'reference' ? acc.referenceId : acc.meterId, sec: acc.gridIntervalSec })],
      [t('pdf.resolutionOf', { id: acc.meterId }), resolution(acc.resolution.test)],
      [t('pdf.resolutionOf', { id: acc.referenceId }), resolution(acc.resolution.reference)],
      [t('pdf.refSerial'), acc.reference.serial ?? notGiven],
      [t('pdf.refCertificate'), acc.reference.certificate ?? notGiven],
      [t('pdf.refCalibratedOn'), acc.reference.calibratedOn ?? notGiven],
      [t('pdf.refUncertainty'), acc.reference.expandedUncertaintyPct === null ? notGiven : pct(locale, acc.reference.expandedUncertaintyPct, 2)],
    ],
    230,
  );
}

function meterSection(ctx: Ctx, meterId: string): void {
  const { doc, t, locale, data } = ctx;
  const meter = data.pilot.meters.find((m) => m.id === meterId);
  if (!meter) return;
  const m = metricsOf(ctx, meterId);
  doc.addPage();
  heading(ctx, t('pdf.meterSection', { id: meter.id }));
  paragraph(
    ctx,
    [meter.label, t(`role.${meter.role}`), `${t('meter.site')} ${meter.site}`, meter.reference ? t('acc.reference', { id: meter.reference }) : null].filter(Boolean).join(' · '),
    9.5,
    '#374151',
  );
  if (!m) {
    paragraph(ctx, t('app.noData'));
    return;
  }

  const acc = m.accuracy;
  if (acc) {
    paragraph(ctx, `${t('acc.class', { n: acc.accuracyClass })} · ${t('acc.rates', { q1: formatNumber(locale, acc.q1M3h, 3), q2: formatNumber(locale, acc.q2M3h, 3), q3: formatNumber(locale, acc.q3M3h, 1), q4: formatNumber(locale, acc.q4M3h, 1) })}`, 9, '#374151');
    const groups = evidenceGroups(ctx, acc);
    evidenceTable(ctx, acc, groups);
    const curveH = 230;
    ensureSpace(doc, curveH + 24);
    doc.font(face(ctx, t('results.errorCurve'), true)).fontSize(10).fillColor('#111827').text(t('results.errorCurve'), PAGE.margin, doc.y);
    const top = doc.y + 4;
    svg(
      ctx,
      errorCurveSvg(m.errorCurve ?? [], acc, { xAxis: t('curve.flow'), yAxis: t('curve.error'), mpe: t('curve.mpe'), measured: t('curve.measured'), number: (v, d) => formatNumber(locale, v, d) }, { widthPt: CONTENT_W, heightPt: curveH }),
      PAGE.margin,
      top,
      CONTENT_W,
      curveH,
    );
    doc.y = top + curveH + 8;
    budgetTable(ctx, acc, groups);
    exclusionsTable(ctx, acc);
    registersTable(ctx, acc);
  } else if (meter.role === 'test') {
    paragraph(ctx, t('app.noData'));
  } else {
    paragraph(ctx, t('pdf.noAccuracy'), 9, '#6b7280');
  }

  // Daily charts side by side.
  const days = data.days.map((day) => ({ label: dayLabel(ctx, day.window.fromMs), m: day.meters.find((x) => x.meterId === meterId) }));
  const chartW = (CONTENT_W - 15) / 2;
  const chartH = 150;
  ensureSpace(doc, chartH + 10);
  const top = doc.y;
  const number = (v: number, d: number): string => formatNumber(locale, v, d);
  svg(ctx, barChartSvg({ title: t('results.dailyVolume'), labels: days.map((d) => d.label), values: days.map((d) => d.m?.volumeM3 ?? null), number }, { widthPt: chartW, heightPt: chartH }), PAGE.margin, top, chartW, chartH);
  svg(
    ctx,
    barChartSvg({ title: t('results.dailyCompleteness'), labels: days.map((d) => d.label), values: days.map((d) => (d.m?.completeness ?? null) === null ? null : (d.m?.completeness as number) * 100), yMax: 100, warnBelow: 95, number }, { widthPt: chartW, heightPt: chartH }),
    PAGE.margin + chartW + 15,
    top,
    chartW,
    chartH,
  );
  doc.y = top + chartH + 10;

  heading(ctx, t('pdf.kpi'), 11);
  propertyTable(ctx, kpiRows(m, t, locale));
}

function dayLabel(ctx: Ctx, ms: number): string {
  // "25.11" / "25/11": the day and month of the local date, in the language's order.
  return new Intl.DateTimeFormat(ctx.locale, { timeZone: ctx.tz, day: '2-digit', month: '2-digit' }).format(ms);
}

function dataQuality(ctx: Ctx): void {
  const { doc, t, data, locale } = ctx;
  doc.addPage();
  heading(ctx, t('pdf.dataQuality'));
  const withGaps = data.meters.filter((m) => m.gaps.count > 0);
  if (withGaps.length === 0) paragraph(ctx, t('pdf.noGaps'));
  for (const m of withGaps) {
    paragraph(
      ctx,
      `• ${t('pdf.gapsOf', { id: m.meterId, count: m.gaps.count, longest: formatDurationMs(m.gaps.longestMs), from: m.gaps.longest ? formatDateTime(locale, ctx.tz, m.gaps.longest.fromMs) : '—' })}`,
    );
  }
  heading(ctx, t('pdf.rejectedBy'), 11);
  const rejected = data.meters.flatMap((m) =>
    Object.entries(m.rejected ?? {})
      .filter(([, count]) => count > 0)
      .map(([reason, count]) => [m.meterId, reason, String(count)]),
  );
  // SPEC section 4: a null count is unknown (no dead-letter store at hand), never "none rejected".
  const unknown = data.meters.filter((m) => m.rejected === null);
  if (unknown.length > 0) paragraph(ctx, `${unknown.length === data.meters.length ? '' : `${unknown.map((m) => m.meterId).join(', ')}: `}${t('pdf.rejectedUnknown')}`);
  if (rejected.length === 0 && unknown.length === 0) paragraph(ctx, t('pdf.noRejected'));
  else if (rejected.length > 0) {
    table(
      ctx,
      [
        { header: t('kpi.meter'), width: 160 },
        { header: t('pdf.reason'), width: CONTENT_W - 240 },
        { header: t('pdf.count'), width: 80, align: 'right' },
      ],
      rejected,
    );
  }
}

/**
 * What the report was made from, for whoever checks it: the software and its commit, the pilot
 * file's SHA-256, the data source and when it was read, the window in local time and in UTC, the
 * rejected count (n/a when unknown, never 0) and the SHA-256 of each test meter's intervals.csv.
 */
function traceability(ctx: Ctx): void {
  const { doc, t, data, options, locale, tz } = ctx;
  doc.addPage();
  heading(ctx, t('trace.title'));
  paragraph(ctx, t('trace.intro'), 9, '#374151');
  const local = (ms: number): string => formatDateTime(locale, tz, ms, true);
  const hash = (text: string): Cell => ({ text, size: 7.5 });
  // SPEC section 4: when any meter's rejected count is unknown, so is the total.
  const rejected = data.meters.some((m) => m.rejected === null)
    ? t('pdf.notApplicable')
    : String(data.meters.reduce((sum, m) => sum + Object.values(m.rejected ?? {}).reduce((a, b) => a + b, 0), 0));
  propertyTable(
    ctx,
    [
      [t('trace.software'), `FlowPilot ${options.softwareVersion}`],
      [t('trace.commit'), hash(commitText(ctx))],
      [t('trace.pilotFile'), hash(options.pilotFileSha256 ?? t('pdf.notApplicable'))],
      [t('pdf.dataSource'), options.dataSource],
      [t('trace.readAt'), { text: `${local(data.readAt.startMs)} – ${local(data.readAt.endMs)}, ${zoneLabel(ctx, data.readAt.startMs)}`, sub: `${iso(data.readAt.startMs)} – ${iso(data.readAt.endMs)}` }],
      [t('trace.generatedAt'), { text: `${local(options.generatedAtMs)}, ${zoneLabel(ctx, options.generatedAtMs)}`, sub: iso(options.generatedAtMs) }],
      [t('trace.windowLocal'), `${local(data.window.fromMs)} – ${local(data.window.toMs)}, ${zoneLabel(ctx, data.window.fromMs)}`],
      [t('trace.windowUtc'), `${iso(data.window.fromMs)} – ${iso(data.window.toMs)}`],
      [t('trace.rejected'), rejected],
    ],
    170,
  );
  const tested = data.meters.filter((m) => m.accuracy);
  if (tested.length === 0) return;
  heading(ctx, t('trace.intervals'), 11);
  paragraph(ctx, t('trace.intervalsIntro', { path: `/api/v1/meters/<id>/intervals.csv?from=${data.window.fromMs}&to=${data.window.toMs}` }), 8.5, '#374151');
  table(
    ctx,
    [
      { header: t('kpi.meter'), width: 90 },
      { header: t('trace.rows'), width: 50, align: 'right' },
      { header: t('trace.sha256'), width: CONTENT_W - 140 },
    ],
    tested.map((m) => [m.meterId, String(m.accuracy?.pairedIntervals ?? 0), hash(data.intervalsSha256[m.meterId] ?? t('pdf.notApplicable'))]),
  );
}

/** SPEC section 4 in words, rule by rule: what an evaluator signs for. */
const METHOD_KEYS = [
  'method.window',
  'method.completeness',
  'method.delivery',
  'method.latency',
  'method.volume',
  'method.night',
  'method.counts',
  'method.rates',
  'method.pairing',
  'method.zones',
  'method.bins',
  'method.exclusions',
  'method.error',
  'method.mpe',
  'method.uncertainty',
  'method.verdict',
  'method.curve',
  'method.trace',
] as const;

function methodology(ctx: Ctx): void {
  const { t, data } = ctx;
  ctx.doc.addPage();
  heading(ctx, t('pdf.methodology'));
  const night = `${data.pilot.nightWindow.start}–${data.pilot.nightWindow.end}`;
  for (const key of METHOD_KEYS) paragraph(ctx, t(key, { night }), 9);
}

function signatures(ctx: Ctx): void {
  const { doc, t } = ctx;
  const blockH = 150;
  ensureSpace(doc, blockH + 60);
  heading(ctx, t('pdf.signature'));
  paragraph(ctx, t('pdf.signatureIntro'));
  const top = doc.y + 6;
  const colW = (CONTENT_W - 30) / 2;
  [t('pdf.evaluator'), t('pdf.utility')].forEach((role, i) => {
    const x = PAGE.margin + i * (colW + 30);
    doc.font(face(ctx, role, true)).fontSize(10).fillColor('#111827').text(role, x, top, { width: colW });
    [t('pdf.sigName'), t('pdf.sigRole'), t('pdf.sigDate'), t('pdf.sigSign')].forEach((label, j) => {
      const y = top + 38 + j * 30;
      doc.moveTo(x, y).lineTo(x + colW, y).lineWidth(0.6).strokeColor('#6b7280').stroke();
      doc.font(face(ctx, label)).fontSize(7.5).fillColor('#6b7280').text(label, x, y + 2, { width: colW });
    });
  });
  doc.x = PAGE.margin;
  doc.y = top + blockH;
}

function footers(ctx: Ctx): void {
  const { doc, t, data } = ctx;
  const range = doc.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    // Writing below the bottom margin would make pdfkit open a new page.
    const bottom = doc.page.margins.bottom;
    doc.page.margins.bottom = 0;
    const pilotAndPeriod = `${data.pilot.name} · ${formatDate(ctx.locale, ctx.tz, data.window.fromMs)} – ${formatDate(ctx.locale, ctx.tz, data.window.toMs - 1)}`;
    const page = t('pdf.page', { n: i + 1, total: range.count });
    doc.fontSize(7.5).fillColor('#6b7280');
    doc.font(face(ctx, pilotAndPeriod)).text(pilotAndPeriod, PAGE.margin, PAGE.height - 32, { width: CONTENT_W * 0.75, lineBreak: false });
    doc.font(face(ctx, page)).text(page, PAGE.margin, PAGE.height - 32, { width: CONTENT_W, align: 'right', lineBreak: false });
    doc.page.margins.bottom = bottom;
  }
}
