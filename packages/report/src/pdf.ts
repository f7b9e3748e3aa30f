import { fileURLToPath } from 'node:url';
import { createTranslator, formatDate, formatDateTime, formatDurationMs, formatErrorPct, formatMpePct, formatNumber, formatRatioPct, formatUtcOffset } from '@flowpilot/i18n';
import type { Language, Translate } from '@flowpilot/i18n';
import PDFDocument from 'pdfkit';
import SVGtoPDF from 'svg-to-pdfkit';
import { kpiRows } from './kpi.ts';
import { barChartSvg, errorCurveSvg } from './svg-charts.ts';
import type { ReportData, ReportMeterMetrics } from './types.ts';

/** DejaVu Sans covers Latin, Cyrillic (Russian, Kazakh) and the symbols the report uses (m³, ±, ≤, Q₁); shipped in fonts/ with its licence. */
export const FONTS_DIR = fileURLToPath(new URL('../fonts/', import.meta.url));
const FONT = 'DejaVuSans';
const FONT_BOLD = 'DejaVuSans-Bold';

export interface RenderOptions {
  language: Language;
  /** The base language for strings a translation lacks. */
  baseLanguage: Language;
  /** When the report was generated, epoch ms (injected: STYLE habit 7). */
  generatedAtMs: number;
  /** FlowPilot's version, on the cover. */
  softwareVersion: string;
  /** Where the data came from, e.g. "InfluxDB http://127.0.0.1:8086, database flowpilot". */
  dataSource: string;
}

const PAGE = { width: 595.28, height: 841.89, margin: 50 };
const CONTENT_W = PAGE.width - 2 * PAGE.margin;
const BOTTOM = PAGE.height - PAGE.margin;
const VERDICT_COLORS = { pass: '#15803d', fail: '#b91c1c', insufficient: '#b45309' } as const;

type Doc = PDFKit.PDFDocument;

interface Cell {
  text: string;
  sub?: string;
  color?: string;
  bold?: boolean;
}
interface Column {
  header: string;
  width: number;
  align?: 'left' | 'right' | 'center';
}

/**
 * The evaluator's report as a PDF: cover, summary of the verdicts, one section per meter
 * (error curve against the MPE envelope, daily volume and completeness, key figures),
 * data-quality notes, the methodology of SPEC section 4 in words, and a signature block.
 */
export async function renderReportPdf(data: ReportData, options: RenderOptions): Promise<Buffer> {
  const { language } = options;
  const t = createTranslator(language, options.baseLanguage);
  const locale = language.locale;
  const tz = data.pilot.timezone;
  const doc = new PDFDocument({
    size: 'A4',
    margin: PAGE.margin,
    bufferPages: true,
    info: { Title: `${t('pdf.title')}: ${data.pilot.name}`, Author: 'FlowPilot', Subject: data.pilot.id, Creator: `FlowPilot ${options.softwareVersion}` },
    lang: language.code,
  });
  doc.registerFont(FONT, `${FONTS_DIR}DejaVuSans.ttf`);
  doc.registerFont(FONT_BOLD, `${FONTS_DIR}DejaVuSans-Bold.ttf`);
  doc.font(FONT);
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const finished = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  const ctx: Ctx = { doc, t, locale, tz, data, options };
  cover(ctx);
  summary(ctx);
  for (const meter of data.pilot.meters) meterSection(ctx, meter.id);
  dataQuality(ctx);
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
}

function ensureSpace(doc: Doc, heightPt: number): void {
  if (doc.y + heightPt > BOTTOM) doc.addPage();
}

function heading(ctx: Ctx, text: string, size = 15): void {
  const { doc } = ctx;
  ensureSpace(doc, size * 4);
  doc.moveDown(0.4).font(FONT_BOLD).fontSize(size).fillColor('#111827').text(text, PAGE.margin, doc.y, { width: CONTENT_W });
  doc.moveDown(0.3).font(FONT).fontSize(9.5);
}

function paragraph(ctx: Ctx, text: string, size = 9.5, color = '#111827'): void {
  const { doc } = ctx;
  doc.font(FONT).fontSize(size);
  ensureSpace(doc, doc.heightOfString(text, { width: CONTENT_W }) + 4);
  doc.fillColor(color).text(text, PAGE.margin, doc.y, { width: CONTENT_W, lineGap: 1.5 });
  doc.moveDown(0.5);
}

/** A table that breaks across pages, repeating its header. */
function table(ctx: Ctx, columns: readonly Column[], rows: ReadonlyArray<ReadonlyArray<Cell | string>>, fontSize = 8.5): void {
  const { doc } = ctx;
  const padX = 4;
  const padY = 3.5;
  const cellHeight = (cell: Cell, width: number): number => {
    doc.font(cell.bold ? FONT_BOLD : FONT).fontSize(fontSize);
    let h = doc.heightOfString(cell.text || ' ', { width: width - 2 * padX });
    if (cell.sub) {
      doc.font(FONT).fontSize(fontSize - 1.5);
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
      doc.font(cell.bold || header ? FONT_BOLD : FONT).fontSize(fontSize).fillColor(cell.color ?? (header ? '#374151' : '#111827'));
      doc.text(cell.text, x + padX, top + padY, { width: column.width - 2 * padX, align: column.align ?? 'left' });
      if (cell.sub) doc.font(FONT).fontSize(fontSize - 1.5).fillColor('#6b7280').text(cell.sub, x + padX, doc.y, { width: column.width - 2 * padX, align: column.align ?? 'left' });
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

function svg(ctx: Ctx, markup: string, x: number, y: number, width: number, height: number): void {
  SVGtoPDF(ctx.doc, markup, x, y, {
    width,
    height,
    assumePt: true,
    fontCallback: (_family, bold) => (bold ? FONT_BOLD : FONT),
    warningCallback: () => {},
  });
}

const periodText = (ctx: Ctx): string => {
  const { fromMs, toMs } = ctx.data.window;
  return `${formatDateTime(ctx.locale, ctx.tz, fromMs)} – ${formatDateTime(ctx.locale, ctx.tz, toMs)}`;
};

const zoneLabel = (ctx: Ctx, atMs: number): string => `${ctx.tz} (UTC${formatUtcOffset(ctx.tz, atMs)})`;

function cover(ctx: Ctx): void {
  const { doc, t, data, options } = ctx;
  doc.font(FONT).fontSize(10).fillColor('#6b7280').text('FlowPilot', PAGE.margin, PAGE.margin + 30);
  doc.moveDown(0.3).font(FONT_BOLD).fontSize(20).fillColor('#111827').text(t('pdf.title'), { width: CONTENT_W });
  doc.moveDown(0.3).font(FONT).fontSize(14).fillColor('#1f2937').text(data.pilot.name, { width: CONTENT_W });
  doc.moveDown(1.5);
  table(
    ctx,
    [
      { header: t('pdf.property'), width: 140 },
      { header: t('pdf.value'), width: CONTENT_W - 140 },
    ],
    [
      [t('pdf.pilot'), `${data.pilot.name} (${data.pilot.id})`],
      [t('pdf.period'), periodText(ctx)],
      [t('pdf.timezone'), zoneLabel(ctx, data.window.fromMs)],
      [t('pdf.generatedAt'), `${formatDateTime(ctx.locale, ctx.tz, options.generatedAtMs, true)} (${ctx.tz})`],
      [t('pdf.version'), `FlowPilot ${options.softwareVersion}`],
      [t('pdf.dataSource'), options.dataSource],
    ],
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
      { text: m.id, sub: m.label ?? '' },
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

function verdictCell(ctx: Ctx, zone: { verdict: 'pass' | 'fail' | 'insufficient'; error: number | null; mpe: number; intervals: number } | undefined): Cell {
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
        { header: t('kpi.meter'), width: 100 },
        { header: t('zone.lowerShort'), width: 115 },
        { header: t('zone.upperShort'), width: 115 },
        { header: t('zone.overall'), width: 75, align: 'right' },
        { header: t('kpi.completeness'), width: CONTENT_W - 405, align: 'right' },
      ],
      testMeters.map((meter) => {
        const m = metricsOf(ctx, meter.id);
        const acc = m?.accuracy ?? null;
        return [
          { text: meter.id, sub: meter.reference ? t('acc.reference', { id: meter.reference }) : '' },
          verdictCell(ctx, acc?.lower),
          verdictCell(ctx, acc?.upper),
          { text: formatErrorPct(ctx.locale, acc?.overall.error ?? null), sub: acc ? formatMpePct(ctx.locale, acc.overall.mpe) : '' },
          formatRatioPct(ctx.locale, m?.completeness ?? null),
        ];
      }),
      9,
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
    table(
      ctx,
      [
        // Wide enough for the Russian headers ("Погрешность", "Интервалы") on one line.
        { header: '', width: 150 },
        { header: t('acc.error'), width: 90, align: 'right' },
        { header: t('acc.mpe'), width: 55, align: 'right' },
        { header: t('acc.intervals'), width: 75, align: 'right' },
        { header: t('acc.verdict'), width: CONTENT_W - 370 },
      ],
      (['lower', 'upper', 'overall'] as const).map((zone) => {
        const z = acc[zone];
        return [
          t(`zone.${zone}`),
          formatErrorPct(locale, z.error),
          formatMpePct(locale, z.mpe),
          String(z.intervals),
          { text: t(`verdict.${z.verdict}`), color: VERDICT_COLORS[z.verdict], bold: true },
        ];
      }),
      9,
    );
    const curveH = 230;
    ensureSpace(doc, curveH + 24);
    doc.font(FONT_BOLD).fontSize(10).fillColor('#111827').text(t('results.errorCurve'), PAGE.margin, doc.y);
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
  table(
    ctx,
    [
      { header: t('pdf.property'), width: 160 },
      { header: t('pdf.value'), width: CONTENT_W - 160 },
    ],
    kpiRows(m, t, locale),
  );
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
  void doc;
}

function methodology(ctx: Ctx): void {
  const { t, data } = ctx;
  heading(ctx, t('pdf.methodology'));
  const night = `${data.pilot.nightWindow.start}–${data.pilot.nightWindow.end}`;
  for (const key of ['method.window', 'method.completeness', 'method.gaps', 'method.volume', 'method.night', 'method.accuracy', 'method.zones', 'method.error', 'method.mpe', 'method.verdict']) {
    paragraph(ctx, t(key, { night }));
  }
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
    doc.font(FONT_BOLD).fontSize(10).fillColor('#111827').text(role, x, top, { width: colW });
    [t('pdf.sigName'), t('pdf.sigRole'), t('pdf.sigDate'), t('pdf.sigSign')].forEach((label, j) => {
      const y = top + 38 + j * 30;
      doc.moveTo(x, y).lineTo(x + colW, y).lineWidth(0.6).strokeColor('#6b7280').stroke();
      doc.font(FONT).fontSize(7.5).fillColor('#6b7280').text(label, x, y + 2, { width: colW });
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
    doc.font(FONT).fontSize(7.5).fillColor('#6b7280');
    doc.text(`${data.pilot.name} · ${formatDate(ctx.locale, ctx.tz, data.window.fromMs)} – ${formatDate(ctx.locale, ctx.tz, data.window.toMs - 1)}`, PAGE.margin, PAGE.height - 32, { width: CONTENT_W * 0.75, lineBreak: false });
    doc.text(t('pdf.page', { n: i + 1, total: range.count }), PAGE.margin, PAGE.height - 32, { width: CONTENT_W, align: 'right', lineBreak: false });
    doc.page.margins.bottom = bottom;
  }
}

