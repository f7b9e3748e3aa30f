import { formatDurationMs, formatLatencyMs, formatNumber, formatRatioPct } from '@flowpilot/i18n/format';
import type { BackfilledResult, MeterMetrics } from '@flowpilot/metrics';
import uPlot from 'uplot';
import { accuracyCard } from './accuracy-card.ts';
import type { AccuracyCardOptions } from './accuracy-card.ts';
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
    body.append(h('h3', {}, t('results.accuracy')), accuracySection(ctx, metrics.meters, { plots, window, query }));
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

function accuracySection(ctx: Context, meters: readonly MeterMetrics[], options: AccuracyCardOptions): HTMLElement {
  const tests = ctx.pilot.meters.filter((m) => m.role === 'test');
  const box = h('div', { class: 'cards accuracy' });
  if (tests.length === 0) box.append(h('p', {}, ctx.t('results.noTestMeters')));
  for (const meter of tests) box.append(accuracyCard(ctx, meter, meters.find((x) => x.meterId === meter.id), options));
  return box;
}

/**
 * SPEC section 4 latency: p95 over the readings that arrived one at a time, and apart the
 * readings that arrived in backfill arrays (their delay is how long the meter kept them).
 * `backfilled` and `replayed` are read defensively: an API older than them answers without.
 */
function latencyCells(ctx: Context, latency: MeterMetrics['latencyMs']): Array<[string, string, string?]> {
  const { t, locale } = ctx;
  const live: [string, string, string?] = [formatLatencyMs(locale, latency.p95), 'num latency', `n ${formatNumber(locale, latency.count, 0)} · p50 ${formatLatencyMs(locale, latency.p50)} · p99 ${formatLatencyMs(locale, latency.p99)} · max ${formatLatencyMs(locale, latency.max)}`];
  const backfilled = (latency as { backfilled?: BackfilledResult | null }).backfilled;
  if (!backfilled) return [live, ['—', 'num backfilled']];
  const replayed = (latency as { replayed?: number | null }).replayed;
  const share = backfilled.share === null ? '' : ` (${formatRatioPct(locale, backfilled.share, 1)})`;
  const title = [backfilled.maxMs === null ? null : t('results.backfilledLongest', { delay: formatLatencyMs(locale, backfilled.maxMs) }), typeof replayed === 'number' && replayed > 0 ? t('results.replayedLeftOut', { n: formatNumber(locale, replayed, 0) }) : null].filter((x) => x !== null).join(' · ');
  return [live, [`${formatNumber(locale, backfilled.count, 0)}${share}`, 'num backfilled', title]];
}

function kpiTable(ctx: Context, meters: readonly MeterMetrics[]): HTMLElement {
  const { t, locale } = ctx;
  const headers = ['kpi.meter', 'kpi.completeness', 'kpi.delivery', 'kpi.gaps', 'kpi.longestGap', 'results.latencyLiveP95', 'results.backfilled', 'kpi.volume', 'kpi.nightFlow', 'kpi.totalizer', 'kpi.alarms', 'kpi.rejected'];
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
      ...latencyCells(ctx, m.latencyMs),
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
  return h('div', { class: 'scroll' }, h('table', { class: 'kpi', 'data-testid': 'kpi-table' }, h('thead', {}, h('tr', {}, ...headers.map((key, i) => h('th', { scope: 'col', class: i === 0 ? undefined : 'num' }, t(key))))), tbody));
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
