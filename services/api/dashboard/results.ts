import { formatDurationMs, formatErrorPct, formatLatencyMs, formatMpePct, formatNumber, formatRatioPct } from '@flowpilot/i18n/format';
import type { AccuracyResult, ErrorCurveBin, MeterMetrics } from '@flowpilot/metrics';
import uPlot from 'uplot';
import type { Context, View } from './context.ts';
import { getJson, h } from './dom.ts';
import { tzDate } from './meter.ts';
import { periodFromHash, periodPicker, periodQuery } from './period.ts';
import type { Period } from './period.ts';

/** GET /api/v1/metrics: the window as the API resolved it (local days, `to` clamped to now) and every meter's figures. */
interface MetricsBody {
  from: string;
  to: string;
  meters: MeterMetrics[];
}

/** GET /api/v1/metrics?per=day: the same for each local day, in one answer. */
interface DailyBody {
  days: Array<{ date: string; from: string; to: string; meters: MeterMetrics[] }>;
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4d7c0f', '#be185d'];

export const resultsView: View = (root, ctx) => {
  const { t } = ctx;
  const plots: uPlot[] = [];
  const body = h('div', { class: 'results' });
  let generation = 0;
  const load = (period: Period): void => {
    history.replaceState(null, '', `#/results?from=${period.from}&to=${period.to}`);
    const mine = ++generation;
    plots.splice(0).forEach((p) => p.destroy());
    body.replaceChildren(h('p', { class: 'note' }, t('app.loading')));
    void render(period, mine);
  };
  root.append(h('h2', {}, t('results.title')), periodPicker(ctx, periodFromHash(ctx), load), body);

  async function render(period: Period, mine: number): Promise<void> {
    const query = periodQuery(period);
    let metrics: MetricsBody;
    try {
      metrics = await getJson<MetricsBody>(`/api/v1/metrics?${query}`);
    } catch (error) {
      if (mine === generation) body.replaceChildren(h('p', { class: 'error' }, t('app.loadFailed', { what: '/api/v1/metrics', message: (error as Error).message })));
      return;
    }
    if (mine !== generation) return;
    const window = { fromMs: Date.parse(metrics.from), toMs: Date.parse(metrics.to) };
    body.replaceChildren();
    body.append(h('h3', {}, t('results.accuracy')), accuracySection(ctx, metrics.meters, plots, window));
    body.append(h('h3', {}, t('results.kpi')), kpiTable(ctx, metrics.meters));
    const daily = h('div', { class: 'daily' }, h('p', { class: 'note' }, t('app.loading')));
    body.append(h('h3', {}, t('results.daily')), daily);
    try {
      // Every local day in one request: the API computes them from the days it just read.
      const perDay = await getJson<DailyBody>(`/api/v1/metrics?${query}&per=day`);
      if (mine !== generation) return;
      daily.replaceChildren();
      dailyCharts(ctx, daily, perDay.days, plots);
    } catch (error) {
      daily.replaceChildren(h('p', { class: 'error' }, t('app.loadFailed', { what: t('results.daily'), message: (error as Error).message })));
    }
  }
  load(periodFromHash(ctx));
  return () => {
    generation++;
    plots.forEach((p) => p.destroy());
  };
};

function verdictBadge(ctx: Context, verdict: 'pass' | 'fail' | 'insufficient'): HTMLElement {
  return h('span', { class: `verdict ${verdict}`, 'data-verdict': verdict }, ctx.t(`verdict.${verdict}`));
}

function accuracySection(ctx: Context, meters: readonly MeterMetrics[], plots: uPlot[], window: { fromMs: number; toMs: number }): HTMLElement {
  const { t, locale } = ctx;
  const tests = ctx.pilot.meters.filter((m) => m.role === 'test');
  const box = h('div', { class: 'cards' });
  if (tests.length === 0) box.append(h('p', {}, t('results.noTestMeters')));
  for (const meter of tests) {
    const m = meters.find((x) => x.meterId === meter.id);
    const acc = m?.accuracy ?? null;
    const card = h('section', { class: 'card', 'data-meter': meter.id }, h('h4', {}, meter.id, ' ', h('span', { class: 'label inline' }, t('acc.reference', { id: meter.reference ?? '' }))));
    box.append(card);
    if (!acc) {
      card.append(h('p', {}, t('app.noData')));
      continue;
    }
    card.append(h('p', { class: 'label' }, `${t('acc.class', { n: acc.accuracyClass })} · ${t('acc.rates', { q1: formatNumber(locale, acc.q1M3h, 3), q2: formatNumber(locale, acc.q2M3h, 3), q3: formatNumber(locale, acc.q3M3h, 1), q4: formatNumber(locale, acc.q4M3h, 1) })}`));
    const tbody = h('tbody');
    for (const zone of ['lower', 'upper', 'overall'] as const) {
      const z = acc[zone];
      tbody.append(
        h('tr', { 'data-zone': zone }, h('td', {}, t(`zone.${zone}`)), h('td', { class: 'num error-pct' }, formatErrorPct(locale, z.error)), h('td', { class: 'num' }, formatMpePct(locale, z.mpe)), h('td', { class: 'num' }, String(z.intervals)), h('td', {}, verdictBadge(ctx, z.verdict))),
      );
    }
    card.append(h('table', { class: 'verdicts' }, h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', { class: 'num' }, t('acc.error')), h('th', { class: 'num' }, t('acc.mpe')), h('th', { class: 'num' }, t('acc.intervals')), h('th', {}, t('acc.verdict')))), tbody));
    const chart = h('div', { class: 'chart curve' });
    card.append(h('p', { class: 'chart-title' }, t('results.errorCurve')), chart);
    const draw = (bins: readonly ErrorCurveBin[]): void => {
      plots.push(errorCurvePlot(ctx, chart, bins, acc));
    };
    if (m?.errorCurve) draw(m.errorCurve);
    else {
      void getJson<{ bins: ErrorCurveBin[] }>(`/api/v1/meters/${encodeURIComponent(meter.id)}/error-curve?from=${window.fromMs}&to=${window.toMs}`)
        .then((curve) => draw(curve.bins))
        .catch(() => chart.append(h('p', { class: 'note' }, t('app.noData'))));
    }
  }
  return box;
}

/**
 * The error curve against the MPE envelope: x is q on a log scale from below Q1 to above Q4,
 * the envelope is ±MPE stepped at Q2 (SPEC section 4), each bin's error a point.
 */
function errorCurvePlot(ctx: Context, el: HTMLElement, bins: readonly ErrorCurveBin[], acc: AccuracyResult): uPlot {
  const { t, locale } = ctx;
  const mpeAt = (q: number): number => (q < acc.q2M3h ? acc.lower.mpe : acc.upper.mpe);
  const points = bins.filter((b) => b.error !== null && b.intervals > 0);
  const xs = [...new Set([acc.q1M3h, acc.q2M3h, acc.q4M3h, ...points.map((b) => b.qMidM3h)])].sort((a, b) => a - b);
  const errorAt = new Map(points.map((b) => [b.qMidM3h, b.error as number]));
  const inEnvelope = (q: number): boolean => q >= acc.q1M3h && q <= acc.q4M3h;
  const upper = xs.map((q) => (inEnvelope(q) ? mpeAt(q) : null));
  const lower = xs.map((q) => (inEnvelope(q) ? -mpeAt(q) : null));
  const errors = xs.map((q) => errorAt.get(q) ?? null);
  const limit = Math.max(acc.lower.mpe, acc.upper.mpe, ...points.map((b) => Math.abs(b.error as number))) * 1.3;
  const stepped = uPlot.paths.stepped?.({ align: 1 });
  const width = Math.max(280, Math.min(640, el.clientWidth || 600));
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
    [xs, upper, lower, errors],
    el,
  );
}

function kpiTable(ctx: Context, meters: readonly MeterMetrics[]): HTMLElement {
  const { t, locale } = ctx;
  const headers = ['kpi.meter', 'kpi.completeness', 'kpi.delivery', 'kpi.gaps', 'kpi.longestGap', 'kpi.latencyP95', 'kpi.volume', 'kpi.nightFlow', 'kpi.totalizer', 'kpi.alarms', 'kpi.rejected'];
  const tbody = h('tbody');
  for (const meter of ctx.pilot.meters) {
    const m = meters.find((x) => x.meterId === meter.id);
    if (!m) continue;
    const alarms = Object.entries(m.alarms ?? {}).filter(([, n]) => n > 0);
    // SPEC section 4: null is unknown (the API has no dead-letter store at hand): n/a, never 0.
    const rejected = m.rejected === null ? null : Object.entries(m.rejected ?? {}).filter(([, n]) => n > 0);
    const night = m.minNightFlow;
    const reverse = (volume: number | null | undefined): string => (volume === null || volume === undefined || volume <= 0 ? '' : ` · ${t('kpi.nightReverse', { volume: formatNumber(locale, volume, 3) })}`);
    const sum = (list: Array<[string, number]>): number => list.reduce((s, [, n]) => s + n, 0);
    const cells: Array<[string, string, string?]> = [
      [formatRatioPct(locale, m.completeness), 'num', `${m.received} / ${m.expected}`],
      [formatRatioPct(locale, m.delivery), 'num'],
      [String(m.gaps.count), 'num'],
      [m.gaps.count ? formatDurationMs(m.gaps.longestMs) : '—', 'num'],
      [formatLatencyMs(locale, m.latencyMs.p95), 'num', `p50 ${formatLatencyMs(locale, m.latencyMs.p50)} · p99 ${formatLatencyMs(locale, m.latencyMs.p99)} · max ${formatLatencyMs(locale, m.latencyMs.max)}`],
      [formatNumber(locale, m.volumeM3, 1), 'num'],
      [formatNumber(locale, night.minM3h, 3), 'num', night.minNight === null ? undefined : `${night.minNight}${reverse(night.minReverseM3)}`],
      [m.totalizerConsistency.percent === null ? '—' : `${formatNumber(locale, m.totalizerConsistency.percent, 2)} %`, 'num'],
      [String(sum(alarms)), 'num', alarms.map(([a, n]) => `${t(`alarm.${a}`)}: ${n}`).join(', ')],
      rejected === null ? [t('kpi.unknown'), 'num'] : [String(sum(rejected)), 'num', rejected.map(([r, n]) => `${r}: ${n}`).join(', ')],
    ];
    tbody.append(
      h(
        'tr',
        { 'data-meter': meter.id },
        h('td', {}, h('strong', {}, meter.id), h('span', { class: 'label' }, t(`role.${meter.role}`))),
        ...cells.map(([text, cls, title]) => h('td', { class: cls, title: title || undefined }, text)),
      ),
    );
  }
  return h('div', { class: 'scroll' }, h('table', { class: 'kpi', 'data-testid': 'kpi-table' }, h('thead', {}, h('tr', {}, ...headers.map((key, i) => h('th', { class: i === 0 ? '' : 'num' }, t(key))))), tbody));
}

function dailyCharts(ctx: Context, el: HTMLElement, days: DailyBody['days'], plots: uPlot[]): void {
  const { t, locale } = ctx;
  const xs = days.map((d) => Date.parse(d.from) / 1000);
  const meters = ctx.pilot.meters;
  const series = (pick: (m: MeterMetrics) => number | null): Array<Array<number | null>> =>
    meters.map((meter) => days.map((day) => {
      const m = day.meters.find((x) => x.meterId === meter.id);
      return m ? pick(m) : null;
    }));
  const chart = (title: string, data: Array<Array<number | null>>, digits: number, yRange?: [number, number]): void => {
    const box = h('div', { class: 'chart' });
    el.append(h('div', { class: 'daily-chart' }, h('p', { class: 'chart-title' }, title), box));
    const width = Math.max(280, Math.min(620, el.clientWidth / (el.clientWidth > 900 ? 2 : 1) - 16));
    plots.push(
      new uPlot(
        {
          width,
          height: 220,
          tzDate: tzDate(ctx.tz),
          scales: { x: { time: true, range: [(xs[0] ?? 0) - 43_200, (xs.at(-1) ?? 0) + 43_200] }, ...(yRange ? { y: { range: yRange } } : {}) },
          axes: [{ splits: () => xs, values: (_u, splits) => splits.map((s) => new Intl.DateTimeFormat(locale, { timeZone: ctx.tz, day: '2-digit', month: '2-digit' }).format(s * 1000)) }, { size: 56, values: (_u, splits) => splits.map((v) => formatNumber(locale, v, digits)) }],
          series: [
            { label: t('period.from'), value: (_u, v) => (v === null ? '—' : new Intl.DateTimeFormat(locale, { timeZone: ctx.tz, dateStyle: 'medium' }).format(v * 1000)) },
            ...meters.map((m, i) => ({ label: m.id, stroke: COLORS[i % COLORS.length] as string, width: 1.5, points: { show: true, size: 5 }, value: (_u: uPlot, v: number | null) => formatNumber(locale, v, digits) })),
          ],
        },
        [xs, ...data] as uPlot.AlignedData,
        box,
      ),
    );
  };
  chart(t('results.dailyCompleteness'), series((m) => (m.completeness === null ? null : m.completeness * 100)), 1, [0, 100]);
  chart(t('results.dailyVolume'), series((m) => m.volumeM3), 0);
}
