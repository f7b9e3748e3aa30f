import type { AccuracyResult, ErrorCurveBin } from './types.ts';

/**
 * The report's charts as SVG strings, drawn on the server (the PDF embeds them as vectors
 * through svg-to-pdfkit). Pure functions: data and labels in, SVG out.
 */

export interface ChartSize {
  widthPt: number;
  heightPt: number;
}

const FONT = 'font-family="DejaVu Sans"';
const COLORS = { axis: '#374151', grid: '#e5e7eb', mpe: '#b91c1c', band: '#dcfce7', point: '#1d4ed8', bad: '#b91c1c', bar: '#2563eb', muted: '#6b7280' };

const escapeXml = (text: string): string => text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);
const n = (value: number): string => (Math.round(value * 100) / 100).toString();

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${n(x)}" y="${n(y)}" ${FONT} ${attrs}>${escapeXml(content)}</text>`;
}

/** Round-number ticks covering [lo, hi]: 1, 2 or 5 times a power of ten apart. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.round(v / step) * step);
  return ticks;
}

/** 1, 2, 5 × 10^k ticks inside [lo, hi] for a log axis. */
export function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** e;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  return ticks;
}

export interface ErrorCurveLabels {
  xAxis: string;
  yAxis: string;
  mpe: string;
  measured: string;
  /** Formats a tick or value in the report's language. */
  number: (value: number, digits: number) => string;
}

/**
 * The MPE envelope of the error curve as steps: each bin's own MPE (SPEC section 4: the
 * ΔV_ref-weighted MPE of its intervals, each from its water temperature; an empty bin the cold
 * limit of its zone) over its flow range. Bins never straddle Q2, so the step at Q2 is a bin
 * edge. Without bins (no curve), the two zones' MPEs from Q1 to Q2 and from Q2 to Q4.
 */
export function mpeEnvelope(bins: readonly ErrorCurveBin[], accuracy: AccuracyResult): Array<{ fromM3h: number; toM3h: number; mpe: number }> {
  if (bins.length === 0) {
    return [
      { fromM3h: accuracy.q1M3h, toM3h: accuracy.q2M3h, mpe: accuracy.lower.mpe },
      { fromM3h: accuracy.q2M3h, toM3h: accuracy.q4M3h, mpe: accuracy.upper.mpe },
    ];
  }
  return [...bins].sort((a, b) => a.qFromM3h - b.qFromM3h).map((bin) => ({ fromM3h: bin.qFromM3h, toM3h: bin.qToM3h, mpe: bin.mpe }));
}

/**
 * The picture an evaluator looks for first: each bin's error (SPEC section 4 error curve) as a
 * point at its geometric mid flow, on a log flow axis from below Q1 to above Q4, inside the MPE
 * envelope (mpeEnvelope: each bin's own MPE over its flow range), with Q1…Q4 marked. A point
 * outside its bin's MPE is drawn red.
 */
export function errorCurveSvg(bins: readonly ErrorCurveBin[], accuracy: AccuracyResult, labels: ErrorCurveLabels, size: ChartSize = { widthPt: 480, heightPt: 230 }): string {
  const { widthPt: w, heightPt: h } = size;
  const pad = { left: 46, right: 12, top: 34, bottom: 40 };
  const plotW = w - pad.left - pad.right;
  const plotH = h - pad.top - pad.bottom;
  const { q1M3h, q2M3h, q3M3h, q4M3h } = accuracy;
  const xLo = q1M3h / 1.5;
  const xHi = q4M3h * 1.5;
  const x = (q: number): number => pad.left + ((Math.log10(q) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo))) * plotW;
  const errors = bins.map((bin) => bin.error).filter((e): e is number => e !== null && Number.isFinite(e));
  const steps = mpeEnvelope(bins, accuracy);
  const limit = Math.max(...steps.map((step) => step.mpe));
  const yMax = Math.max(limit * 1.4, ...errors.map((e) => Math.abs(e) * 1.15));
  const y = (e: number): number => pad.top + ((yMax - e) / (2 * yMax)) * plotH;
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">`];

  // The envelope: a band per bin, then its limits as one stepped line each side.
  for (const step of steps) {
    parts.push(`<rect x="${n(x(step.fromM3h))}" y="${n(y(step.mpe))}" width="${n(x(step.toM3h) - x(step.fromM3h))}" height="${n(y(-step.mpe) - y(step.mpe))}" fill="${COLORS.band}"/>`);
  }
  for (const tick of niceTicks(-yMax, yMax, 6)) {
    parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${n(y(tick))}" y2="${n(y(tick))}" stroke="${tick === 0 ? COLORS.axis : COLORS.grid}" stroke-width="${tick === 0 ? 0.8 : 0.5}"/>`);
    parts.push(text(pad.left - 4, y(tick) + 3, labels.number(tick, Number.isInteger(tick) ? 0 : 1), 'font-size="7" text-anchor="end" fill="#374151"'));
  }
  const envelope = (sign: 1 | -1): string =>
    steps.map((step, i) => `${i === 0 ? `M${n(x(step.fromM3h))}` : `L${n(x(step.fromM3h))}`},${n(y(sign * step.mpe))} H${n(x(step.toM3h))}`).join(' ');
  parts.push(`<path d="${envelope(1)}" fill="none" stroke="${COLORS.mpe}" stroke-width="1.2"/>`);
  parts.push(`<path d="${envelope(-1)}" fill="none" stroke="${COLORS.mpe}" stroke-width="1.2"/>`);

  for (const [name, q] of [['Q1', q1M3h], ['Q2', q2M3h], ['Q3', q3M3h], ['Q4', q4M3h]] as const) {
    parts.push(`<line x1="${n(x(q))}" x2="${n(x(q))}" y1="${pad.top}" y2="${pad.top + plotH}" stroke="${COLORS.muted}" stroke-width="0.5" stroke-dasharray="2,2"/>`);
    parts.push(text(x(q), pad.top - 4, name, 'font-size="7" text-anchor="middle" fill="#6b7280"'));
  }
  for (const tick of logTicks(xLo, xHi)) {
    parts.push(`<line x1="${n(x(tick))}" x2="${n(x(tick))}" y1="${pad.top + plotH}" y2="${pad.top + plotH + 3}" stroke="${COLORS.axis}" stroke-width="0.5"/>`);
    parts.push(text(x(tick), pad.top + plotH + 11, labels.number(tick, tick < 1 ? (tick < 0.1 ? 2 : 1) : 0), 'font-size="7" text-anchor="middle" fill="#374151"'));
  }
  parts.push(`<rect x="${pad.left}" y="${pad.top}" width="${plotW}" height="${plotH}" fill="none" stroke="${COLORS.axis}" stroke-width="0.6"/>`);

  // The measured curve: a line through the bins that hold intervals, a dot per bin.
  const points = bins.filter((bin) => bin.error !== null && Number.isFinite(bin.error) && bin.intervals > 0);
  if (points.length > 1) {
    parts.push(`<polyline points="${points.map((bin) => `${n(x(bin.qMidM3h))},${n(y(bin.error as number))}`).join(' ')}" fill="none" stroke="${COLORS.point}" stroke-width="1"/>`);
  }
  for (const bin of points) {
    const outside = Math.abs(bin.error as number) > bin.mpe;
    parts.push(`<circle cx="${n(x(bin.qMidM3h))}" cy="${n(y(bin.error as number))}" r="2.6" fill="${outside ? COLORS.bad : COLORS.point}"/>`);
  }

  parts.push(text(pad.left + plotW / 2, h - 6, labels.xAxis, 'font-size="8" text-anchor="middle" fill="#111827"'));
  parts.push(text(10, pad.top + plotH / 2, labels.yAxis, `font-size="8" text-anchor="middle" fill="#111827" transform="rotate(-90 10 ${n(pad.top + plotH / 2)})"`));
  // Legend above the plot, clear of the envelope and the Q marks.
  const lx = pad.left;
  const ly = 8;
  parts.push(`<line x1="${lx}" x2="${lx + 14}" y1="${ly}" y2="${ly}" stroke="${COLORS.mpe}" stroke-width="1.2"/>`);
  parts.push(text(lx + 18, ly + 2.5, labels.mpe, 'font-size="7" fill="#111827"'));
  const mx = lx + 30 + labels.mpe.length * 4;
  parts.push(`<circle cx="${mx + 7}" cy="${ly}" r="2.6" fill="${COLORS.point}"/>`);
  parts.push(text(mx + 14, ly + 2.5, labels.measured, 'font-size="7" fill="#111827"'));
  parts.push('</svg>');
  return parts.join('');
}

export interface BarChartOptions {
  title: string;
  /** Bar labels (e.g. dates "25.11"), one per value. */
  labels: readonly string[];
  values: ReadonlyArray<number | null>;
  /** Fixed y range (completeness: 0–100); otherwise 0 to a round number above the largest value. */
  yMax?: number;
  number: (value: number, digits: number) => string;
  /** A value below this is drawn in the warning colour (e.g. completeness under 95 %). */
  warnBelow?: number;
}

/** A daily bar chart (daily volume, daily completeness). A day without data has no bar. */
export function barChartSvg(options: BarChartOptions, size: ChartSize = { widthPt: 235, heightPt: 150 }): string {
  const { widthPt: w, heightPt: h } = size;
  const pad = { left: 40, right: 6, top: 18, bottom: 22 };
  const plotW = w - pad.left - pad.right;
  const plotH = h - pad.top - pad.bottom;
  const finite = options.values.filter((v): v is number => v !== null && Number.isFinite(v));
  const largest = options.yMax ?? Math.max(1e-9, ...finite);
  const ticks = niceTicks(0, largest, 4);
  const step = ticks.length > 1 ? (ticks[1] as number) - (ticks[0] as number) : largest;
  // The top tick at or above the largest bar, so no bar runs off the scale.
  if ((ticks.at(-1) ?? 0) < largest - 1e-9) ticks.push((ticks.at(-1) ?? 0) + step);
  const yMax = ticks.at(-1) ?? largest;
  const y = (v: number): number => pad.top + plotH - (Math.max(0, v) / yMax) * plotH;
  const count = Math.max(1, options.values.length);
  const slot = plotW / count;
  const digits = yMax < 5 ? 1 : 0;
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">`];
  parts.push(text(pad.left, 10, options.title, 'font-size="8" font-weight="bold" fill="#111827"'));
  for (const tick of ticks) {
    parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${n(y(tick))}" y2="${n(y(tick))}" stroke="${COLORS.grid}" stroke-width="0.5"/>`);
    parts.push(text(pad.left - 3, y(tick) + 2.5, options.number(tick, digits), 'font-size="6.5" text-anchor="end" fill="#374151"'));
  }
  options.values.forEach((value, i) => {
    if (value === null || !Number.isFinite(value)) return;
    const bx = pad.left + i * slot + slot * 0.15;
    const warn = options.warnBelow !== undefined && value < options.warnBelow;
    parts.push(`<rect x="${n(bx)}" y="${n(y(value))}" width="${n(slot * 0.7)}" height="${n(pad.top + plotH - y(value))}" fill="${warn ? '#d97706' : COLORS.bar}"/>`);
  });
  // At most ~10 date labels so they never overlap.
  const every = Math.max(1, Math.ceil(count / 10));
  options.labels.forEach((label, i) => {
    if (i % every !== 0) return;
    parts.push(text(pad.left + (i + 0.5) * slot, pad.top + plotH + 9, label, 'font-size="6" text-anchor="middle" fill="#374151"'));
  });
  parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${pad.top + plotH}" y2="${pad.top + plotH}" stroke="${COLORS.axis}" stroke-width="0.6"/>`);
  parts.push('</svg>');
  return parts.join('');
}
