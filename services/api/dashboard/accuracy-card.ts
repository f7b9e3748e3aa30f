import { ERROR_DIGITS, formatDate, formatErrorPct, formatMpePct, formatNumber, formatRatioPct } from '@flowpilot/i18n/format';
import { MIN_REPEATABILITY_DAYS } from '@flowpilot/metrics';
import type { AccuracyEvidence, AccuracyResult, BinAccuracy, ErrorCurveBin, FlowZone, MeterMetrics, RegisterResolution, Verdict } from '@flowpilot/metrics';
import uPlot from 'uplot';
import type { MeterView } from '../src/api-schemas.ts';
import type { Context } from './context.ts';
import { getJson, h } from './dom.ts';

/**
 * One test meter's accuracy on the Results page, with the evidence an evaluator checks it by
 * (SPEC section 4): per zone the error, MPE, U (k = 2), intervals, verdict and the rule that
 * decided it; the R49 test-flow bins; the water temperature; the excluded intervals by reason
 * with the paired intervals as CSV; what U counted as 0; the reference's calibration; and the
 * error curve against each bin's own MPE.
 */

/** An error-curve bin as GET /meters/{id}/error-curve answers it (`zone` is not in every API version's answer). */
type CurveBin = Omit<ErrorCurveBin, 'zone'> & { zone?: FlowZone };

export interface AccuracyCardOptions {
  /** The page's window as the API resolved it, for the error curve. */
  window: { fromMs: number; toMs: number };
  /** The page's period as an API query (`from=…&to=…`), for intervals.csv: the same window as /metrics. */
  query: string;
  /** Charts drawn, for the page to destroy. */
  plots: uPlot[];
}

function verdictBadge(ctx: Context, verdict: Verdict): HTMLElement {
  return h('span', { class: `verdict ${verdict}`, 'data-verdict': verdict, title: ctx.t(`results.verdictMeans.${verdict}`) }, ctx.t(`verdict.${verdict}`));
}

/** The rule of a verdict in words (conformity.ts DecisionRule); an unknown rule as the API wrote it. */
function ruleText(ctx: Context, rule: string, minIntervals: number): string {
  const { t } = ctx;
  if (rule === 'intervals') return t('rule.intervals', { n: minIntervals });
  if (rule === 'simple acceptance') return t('rule.simpleAcceptance');
  if (rule === 'guarded acceptance') return t('rule.guardedAcceptance');
  if (rule === 'zones') return t('rule.zones');
  if (rule.startsWith('bin ')) return t('rule.bin', { bin: rule.slice(4) });
  return rule;
}

/** A flow rate with up to 4 significant digits: 0.625, 1.008, 22.4, 78.75, 125. */
function formatFlow(locale: string, q: number): string {
  return new Intl.NumberFormat(locale, { maximumSignificantDigits: 4 }).format(q);
}

/** U (k = 2) of an error, in percentage points beside it: "±0.123 %". */
function formatUncertainty(locale: string, pct: number): string {
  return `±${formatNumber(locale, pct, ERROR_DIGITS)} %`;
}

/** A bin's flow range with its closed and open ends (SPEC section 4): Q3 itself is in upper-3, so upper-4 is open below. */
function flowRange(locale: string, bin: BinAccuracy): string {
  const below = bin.bin === 'upper-4' ? '<' : '≤';
  const above = bin.bin === 'upper-3' || bin.bin === 'upper-4' ? '≤' : '<';
  return `${formatFlow(locale, bin.qFromM3h)} ${below} q ${above} ${formatFlow(locale, bin.qToM3h)}`;
}

/** A table that turns into one block per row at phone width (style.css `table.stack`): each cell carries its column's name. */
function stackTable(caption: string, cls: string, headers: readonly [string, string][], rows: HTMLTableRowElement[], testId?: string): HTMLElement {
  return h(
    'table',
    { class: `stack ${cls}`, 'data-testid': testId },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map(([text, c]) => h('th', { scope: 'col', class: c || undefined }, text)))),
    h('tbody', {}, ...rows),
  );
}

function evidenceCells(ctx: Context, e: AccuracyEvidence, labels: { error: string; mpe: string; u: string; n: string; verdict: string; rule: string }): HTMLTableCellElement[] {
  const { locale } = ctx;
  const short = e.intervals < e.minIntervals;
  return [
    h('td', { class: 'num error-pct', 'data-label': labels.error }, formatErrorPct(locale, e.error)),
    h('td', { class: 'num', 'data-label': labels.mpe }, formatMpePct(locale, e.mpe)),
    h('td', { class: 'num', 'data-label': labels.u, title: ctx.t('results.uBudget', { ref: formatNumber(locale, e.uncertainty.referencePct, ERROR_DIGITS), res: formatNumber(locale, e.uncertainty.resolutionPct, ERROR_DIGITS), rep: formatNumber(locale, e.uncertainty.repeatabilityPct, ERROR_DIGITS) }) }, formatUncertainty(locale, e.uncertainty.expandedPct)),
    h('td', { class: `num${short ? ' short' : ''}`, 'data-label': labels.n }, `${formatNumber(locale, e.intervals, 0)} / ${e.minIntervals}`),
    h('td', { 'data-label': labels.verdict }, verdictBadge(ctx, e.verdict)),
    h('td', { class: 'rule', 'data-label': labels.rule, 'data-rule': e.rule }, ruleText(ctx, e.rule, e.minIntervals)),
  ];
}

function columnLabels(ctx: Context) {
  const { t } = ctx;
  return { error: t('acc.error'), mpe: t('acc.mpe'), u: t('acc.uncertainty'), n: t('results.intervalsNeeded'), verdict: t('acc.verdict'), rule: t('results.rule') };
}

function zoneTable(ctx: Context, acc: AccuracyResult): HTMLElement {
  const { t } = ctx;
  const labels = columnLabels(ctx);
  const rows = (['lower', 'upper', 'overall'] as const).map((zone) => h('tr', { 'data-zone': zone }, h('th', { scope: 'row' }, t(`zone.${zone}`)), ...evidenceCells(ctx, acc[zone], labels)));
  const headers: [string, string][] = [[t('results.zone'), ''], [labels.error, 'num'], [labels.mpe, 'num'], [labels.u, 'num'], [labels.n, 'num'], [labels.verdict, ''], [labels.rule, '']];
  return stackTable(t('results.zonesTitle'), 'verdicts', headers, rows, 'zone-table');
}

function binsTable(ctx: Context, acc: AccuracyResult): HTMLElement {
  const { t, locale } = ctx;
  const labels = columnLabels(ctx);
  const range = t('results.flowRange');
  const rows = acc.bins.map((bin) =>
    h('tr', { 'data-bin': bin.bin }, h('th', { scope: 'row' }, h('code', {}, bin.bin)), h('td', { class: 'num', 'data-label': range }, flowRange(locale, bin)), ...evidenceCells(ctx, bin, labels)),
  );
  const headers: [string, string][] = [[t('acc.bin'), ''], [range, 'num'], [labels.error, 'num'], [labels.mpe, 'num'], [labels.u, 'num'], [labels.n, 'num'], [labels.verdict, ''], [labels.rule, '']];
  return stackTable(t('results.binsTitle'), 'bins', headers, rows, 'bins-table');
}

/** A definition list of label → value (style.css `.facts`). */
function facts(items: ReadonlyArray<[string, Node | string]>): HTMLElement {
  return h('dl', { class: 'facts' }, ...items.flatMap(([label, value]) => [h('dt', {}, label), h('dd', {}, value)]));
}

function temperatureSection(ctx: Context, acc: AccuracyResult): HTMLElement {
  const { t, locale } = ctx;
  const temp = acc.overall.temperature;
  const celsius = (c: number | null, testId: string): HTMLElement => h('span', { 'data-testid': testId, 'data-value': c === null ? undefined : String(c) }, formatNumber(locale, c, 1));
  return h(
    'section',
    { class: 'evidence temperature' },
    h('h5', {}, t('acc.temperature')),
    facts([
      [t('results.temperatureSource'), t(`results.temperatureSource.${temp.source}`)],
      [t('results.temperatureRange'), h('span', {}, celsius(temp.minC, 'temperature-min'), ' / ', celsius(temp.medianC, 'temperature-median'), ' / ', celsius(temp.maxC, 'temperature-max'), '\u00a0°C')],
      [t('results.temperatureWarmShare'), h('span', { 'data-testid': 'temperature-warm-share' }, formatRatioPct(locale, temp.volumeShareAbove30C, 1))],
    ]),
  );
}

function exclusionSection(ctx: Context, meterId: string, acc: AccuracyResult, query: string): HTMLElement {
  const { t, locale } = ctx;
  // The API's order is SPEC section 4's (EXCLUSION_REASONS); a reason added later shows under its key.
  const reasons = Object.entries(acc.excluded) as Array<[string, number]>;
  const excluded = reasons.reduce((sum, [, n]) => sum + n, 0);
  const count = t('acc.intervals');
  const rows = reasons.map(([reason, n]) =>
    h('tr', { 'data-reason': reason, class: n === 0 ? 'zero' : undefined }, h('th', { scope: 'row' }, t(`exclusion.${reason}`)), h('td', { class: 'num', 'data-label': count }, formatNumber(locale, n, 0))),
  );
  const href = `/api/v1/meters/${encodeURIComponent(meterId)}/intervals.csv?${query}`;
  return h(
    'section',
    { class: 'evidence exclusions' },
    h('h5', {}, t('acc.excluded')),
    h('p', { class: 'note', 'data-testid': 'paired-summary' }, t('results.pairedSummary', { paired: formatNumber(locale, acc.pairedIntervals, 0), counted: formatNumber(locale, acc.overall.intervals, 0), excluded: formatNumber(locale, excluded, 0) })),
    h('table', { class: 'excluded', 'data-testid': 'excluded-table' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('results.reason')), h('th', { scope: 'col', class: 'num' }, count))), h('tbody', {}, ...rows)),
    // A plain link: the sign-in cookie rides along, as with the downloads on the Reports page.
    h('p', {}, h('a', { class: 'button', href, download: '', 'data-testid': 'intervals-csv' }, t('results.downloadIntervals'))),
  );
}

/**
 * What U counted as 0, and what it inferred (SPEC section 4: "0 and said so"), in the reader's
 * language from the figures themselves (the API's `notes` are the same facts, in English).
 */
function uncertaintyNotes(ctx: Context, acc: AccuracyResult): string[] {
  const { t, locale } = ctx;
  const notes: string[] = [];
  if (acc.reference.expandedUncertaintyPct === null) notes.push(t('results.note.referenceNotGiven'));
  const resolution = (meter: string, r: RegisterResolution): void => {
    if (r.m3 === null) notes.push(t('results.note.resolutionUnknown', { meter }));
    else if (r.source === 'inferred from data') notes.push(t('results.note.resolutionInferred', { meter, value: new Intl.NumberFormat(locale, { maximumSignificantDigits: 6 }).format(r.m3) }));
  };
  resolution(acc.referenceId, acc.resolution.reference);
  resolution(acc.meterId, acc.resolution.test);
  for (const zone of ['lower', 'upper'] as const) {
    const u = acc[zone].uncertainty;
    // conformity.ts: the day-to-day scatter enters U from MIN_REPEATABILITY_DAYS days on.
    if (u.days < MIN_REPEATABILITY_DAYS) notes.push(t('results.note.repeatability', { zone: t(`zone.${zone}Short`).toLocaleLowerCase(locale), days: u.days, min: MIN_REPEATABILITY_DAYS }));
  }
  return notes;
}

function uncertaintySection(ctx: Context, acc: AccuracyResult): HTMLElement {
  const { t, locale } = ctx;
  const pp = (x: number): string => formatNumber(locale, x, ERROR_DIGITS);
  const rows = (['lower', 'upper'] as const).map((zone) => {
    const u = acc[zone].uncertainty;
    return h(
      'tr',
      { 'data-budget': zone },
      h('th', { scope: 'row' }, t(`zone.${zone}Short`)),
      h('td', { class: 'num', 'data-label': t('results.uRef') }, pp(u.referencePct)),
      h('td', { class: 'num', 'data-label': t('results.uRes') }, pp(u.resolutionPct)),
      h('td', { class: 'num', 'data-label': t('results.uRep') }, pp(u.repeatabilityPct)),
      h('td', { class: 'num', 'data-label': t('acc.uncertainty') }, formatUncertainty(locale, u.expandedPct)),
    );
  });
  const headers: [string, string][] = [[t('results.zone'), ''], [t('results.uRef'), 'num'], [t('results.uRes'), 'num'], [t('results.uRep'), 'num'], [t('acc.uncertainty'), 'num']];
  const notes = uncertaintyNotes(ctx, acc);
  return h(
    'section',
    { class: 'evidence uncertainty' },
    h('h5', {}, t('results.uncertaintyTitle')),
    stackTable(t('results.uncertaintyCaption'), 'budget', headers, rows),
    h('p', { class: 'label' }, t('results.countedAsZero')),
    notes.length > 0 ? h('ul', { class: 'notes', 'data-testid': 'uncertainty-notes' }, ...notes.map((n) => h('li', {}, n))) : h('p', { class: 'note', 'data-testid': 'uncertainty-notes' }, t('results.note.none')),
  );
}

function calibrationSection(ctx: Context, acc: AccuracyResult): HTMLElement {
  const { t, locale } = ctx;
  const ref = acc.reference;
  const notGiven = (): HTMLElement => h('span', { class: 'not-given' }, t('results.notGiven'));
  // A bare date (YYYY-MM-DD) is the certificate's own date: shown as a date, not moved across zones.
  const date = (s: string): string => (/^\d{4}-\d{2}-\d{2}$/.test(s) ? formatDate(locale, 'UTC', Date.parse(`${s}T00:00:00Z`)) : s);
  return h(
    'section',
    { class: 'evidence calibration', 'data-testid': 'calibration' },
    h('h5', {}, t('results.calibrationTitle', { id: acc.referenceId })),
    facts([
      [t('results.serial'), ref.serial ?? notGiven()],
      [t('results.certificate'), ref.certificate ?? notGiven()],
      [t('results.calibratedOn'), ref.calibratedOn === null ? notGiven() : date(ref.calibratedOn)],
      [t('results.calibrationU'), ref.expandedUncertaintyPct === null ? notGiven() : formatUncertainty(locale, ref.expandedUncertaintyPct)],
    ]),
  );
}

export function accuracyCard(ctx: Context, meter: MeterView, m: MeterMetrics | undefined, options: AccuracyCardOptions): HTMLElement {
  const { t, locale } = ctx;
  const acc = m?.accuracy ?? null;
  const card = h('section', { class: 'card', 'data-meter': meter.id }, h('h4', {}, meter.id, ' ', h('span', { class: 'label inline' }, t('acc.reference', { id: meter.reference ?? '' }))));
  if (!acc) {
    card.append(h('p', {}, t('app.noData')));
    return card;
  }
  card.append(h('p', { class: 'label' }, `${t('acc.class', { n: acc.accuracyClass })} · ${t('acc.rates', { q1: formatNumber(locale, acc.q1M3h, 3), q2: formatNumber(locale, acc.q2M3h, 3), q3: formatNumber(locale, acc.q3M3h, 1), q4: formatNumber(locale, acc.q4M3h, 1) })}`));
  card.append(h('div', { class: 'scroll' }, zoneTable(ctx, acc)));
  const shown = new Set<Verdict>([acc.lower.verdict, acc.upper.verdict, acc.overall.verdict, ...acc.bins.map((b) => b.verdict)]);
  // The one verdict a reader may not know: say what it means where it appears.
  if (shown.has('inconclusive')) card.append(h('p', { class: 'note inconclusive-note', 'data-testid': 'inconclusive-note' }, t('results.verdictMeans.inconclusive')));
  card.append(h('div', { class: 'scroll' }, binsTable(ctx, acc)));
  const chart = h('div', { class: 'chart curve', role: 'img', 'aria-label': t('results.curveLabel', { id: meter.id }) });
  card.append(h('p', { class: 'chart-title' }, t('results.errorCurve')), chart);
  const draw = (bins: readonly CurveBin[]): void => {
    options.plots.push(errorCurvePlot(ctx, chart, bins, acc));
  };
  if (m?.errorCurve) draw(m.errorCurve);
  else {
    void getJson<{ bins: CurveBin[] }>(`/api/v1/meters/${encodeURIComponent(meter.id)}/error-curve?from=${options.window.fromMs}&to=${options.window.toMs}`)
      .then((curve) => draw(curve.bins))
      .catch(() => chart.append(h('p', { class: 'note' }, t('app.noData'))));
  }
  card.append(
    h('div', { class: 'evidence-grid' }, temperatureSection(ctx, acc), exclusionSection(ctx, meter.id, acc, options.query), calibrationSection(ctx, acc), uncertaintySection(ctx, acc)),
  );
  return card;
}

type CurveStep = Pick<CurveBin, 'qFromM3h' | 'qToM3h' | 'qMidM3h' | 'mpe' | 'error' | 'intervals'>;

/**
 * The ±MPE envelope as steps over the curve's bins, each at its own `mpe` (SPEC section 4: the
 * MPE that applies to the bin, its intervals' temperature included; the bins split at Q2), so a
 * warm-water stretch of the upper zone widens only where it was. Without bins, the zones' MPEs.
 * x positions: every bin edge, and the mid-point of each bin with an error.
 */
function envelope(bins: readonly CurveStep[], acc: Pick<AccuracyResult, 'q1M3h' | 'q2M3h' | 'q4M3h' | 'lower' | 'upper'>): { xs: number[]; mpe: Array<number | null>; error: Array<number | null> } {
  const steps: CurveStep[] = bins.length > 0 ? [...bins].sort((a, b) => a.qFromM3h - b.qFromM3h) : [
    { qFromM3h: acc.q1M3h, qToM3h: acc.q2M3h, qMidM3h: Math.sqrt(acc.q1M3h * acc.q2M3h), mpe: acc.lower.mpe, error: null, intervals: 0 },
    { qFromM3h: acc.q2M3h, qToM3h: acc.q4M3h, qMidM3h: Math.sqrt(acc.q2M3h * acc.q4M3h), mpe: acc.upper.mpe, error: null, intervals: 0 },
  ];
  const points = steps.filter((b) => b.error !== null && b.intervals > 0);
  const first = steps[0]?.qFromM3h ?? acc.q1M3h;
  const last = steps.at(-1)?.qToM3h ?? acc.q4M3h;
  const xs = [...new Set([...steps.flatMap((b) => [b.qFromM3h, b.qToM3h]), ...points.map((b) => b.qMidM3h)])].sort((a, b) => a - b);
  // The bin holding x: [qFrom, qTo), the last one closed (its qTo is Q4). A stepped path holds
  // each value until the next x, so the value at a bin's lower edge draws the whole bin.
  const binAt = (q: number) => steps.find((b) => q >= b.qFromM3h && q < b.qToM3h) ?? (q === last ? steps.at(-1) : undefined);
  const errorAt = new Map(points.map((b) => [b.qMidM3h, b.error as number]));
  return {
    xs,
    mpe: xs.map((q) => (q >= first && q <= last ? (binAt(q)?.mpe ?? null) : null)),
    error: xs.map((q) => errorAt.get(q) ?? null),
  };
}

/** The error curve against the MPE envelope: x is q on a log scale from below Q1 to above Q4, each bin's error a point. */
function errorCurvePlot(ctx: Context, el: HTMLElement, bins: readonly CurveBin[], acc: AccuracyResult): uPlot {
  const { t, locale } = ctx;
  const { xs, mpe, error } = envelope(bins, acc);
  const upper = mpe;
  const lower = mpe.map((v) => (v === null ? null : -v));
  const values = [...mpe, ...error].filter((v): v is number => v !== null).map(Math.abs);
  const limit = Math.max(acc.lower.mpe, acc.upper.mpe, ...values) * 1.3;
  const stepped = uPlot.paths.stepped?.({ align: 1 });
  const width = Math.max(280, Math.min(820, el.clientWidth || 600));
  return new uPlot(
    {
      width,
      height: 240,
      scales: { x: { time: false, distr: 3, range: [acc.q1M3h / 1.5, acc.q4M3h * 1.5] }, y: { range: [-limit, limit] } },
      axes: [
        {
          label: t('curve.flow'),
          // Label 1, 2 and 5 times a power of ten only: the other log ticks stay as grid lines.
          values: (_u, splits) => splits.map((v) => (v !== null && [1, 2, 5].includes(Math.round(v / 10 ** Math.floor(Math.log10(v) + 1e-9))) ? formatNumber(locale, v, v < 1 ? 2 : 0) : '')),
        },
        { label: t('curve.error'), size: 50, values: (_u, splits) => splits.map((v) => formatNumber(locale, v, 1)) },
      ],
      series: [
        { label: 'q, m³/h', value: (_u, v) => (v === null ? '—' : formatNumber(locale, v, 3)) },
        { label: `+${t('acc.mpe')}`, stroke: '#b91c1c', width: 1.5, ...(stepped ? { paths: stepped } : {}), points: { show: false }, value: (_u, v) => (v === null ? '—' : formatMpePct(locale, v)) },
        { label: `−${t('acc.mpe')}`, stroke: '#b91c1c', width: 1.5, ...(stepped ? { paths: stepped } : {}), points: { show: false }, value: (_u, v) => (v === null ? '—' : formatMpePct(locale, -v)) },
        { label: t('curve.measured'), stroke: '#1d4ed8', width: 1.5, spanGaps: true, points: { show: true, size: 8, fill: '#1d4ed8' }, value: (_u, v) => formatErrorPct(locale, v) },
      ],
      bands: [{ series: [1, 2], fill: '#16a34a1f' }],
    },
    [xs, upper, lower, error],
    el,
  );
}
