import { formatDateTime, formatNumber } from '@flowpilot/i18n/format';
import { localDate, localMidnightMs } from '@flowpilot/metrics';
import uPlot from 'uplot';
import type { ApiReading, Bucket, LiveReading, MeterView } from '../src/api-schemas.ts';
import { alertBadge } from './alerts.ts';
import type { Context, View } from './context.ts';
import { getJson, h } from './dom.ts';

/** "Last seen" turns stale after this many reporting intervals without a reading (as /api/v1/pilot's `online`). */
export const STALE_AFTER_INTERVALS = 3;
const SPARK_HOURS = 6;
const SPARK_BUCKET = '5m';

export function ago(ctx: Context, ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return ctx.t('live.ago.s', { n: s });
  if (s < 90 * 60) return ctx.t('live.ago.min', { n: Math.round(s / 60) });
  if (s < 36 * 3600) return ctx.t('live.ago.h', { n: Math.round(s / 3600) });
  return ctx.t('live.ago.d', { n: Math.round(s / 86400) });
}

/** The feed indicator in the header: one EventSource per view, its state shown to the user. */
export function openLiveFeed(ctx: Context, query: string, onReading: (reading: LiveReading) => void): () => void {
  const indicator = document.getElementById('feed');
  const show = (key: string, up: boolean): void => {
    if (!indicator) return;
    indicator.textContent = ctx.t(key);
    indicator.className = up ? 'up' : 'down';
  };
  show('feed.connecting', false);
  const source = new EventSource(`/api/v1/live${query}`);
  source.addEventListener('open', () => show('feed.live', true));
  // EventSource reconnects by itself; say so meanwhile.
  source.addEventListener('error', () => show('feed.reconnecting', false));
  source.addEventListener('reading', (event) => onReading(JSON.parse((event as MessageEvent<string>).data) as LiveReading));
  return () => source.close();
}

interface Row {
  meter: MeterView;
  tr: HTMLTableRowElement;
  /** Where the badge of the meter's firing alerts goes, beside its id. */
  alerts: HTMLElement;
  status: HTMLElement;
  lastSeen: HTMLElement;
  flow: HTMLElement;
  today: HTMLElement;
  lastSeenMs: number | null;
  online: boolean;
  /** The total at local midnight (from the bucket before it), and the latest total: today's volume is their difference plus resets. */
  todayVolumeM3: number | null;
  lastTotalM3: number | null;
  spark: { xs: number[]; ys: number[]; plot: uPlot | null };
}

function sparkline(el: HTMLElement, xs: number[], ys: number[]): uPlot {
  return new uPlot(
    {
      width: 140,
      height: 34,
      class: 'spark',
      legend: { show: false },
      cursor: { show: false },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      axes: [{ show: false }, { show: false }],
      scales: { x: { time: true } },
      series: [{}, { stroke: '#2563eb', width: 1.5, fill: '#2563eb22', points: { show: false } }],
    },
    [xs, ys],
    el,
  );
}

export const liveView: View = (root, ctx) => {
  const { t, locale, pilot } = ctx;
  const rows = new Map<string, Row>();
  const tbody = h('tbody');
  root.append(
    h('h2', {}, t('live.title')),
    h(
      'table',
      { class: 'live', 'data-testid': 'live-table' },
      h('thead', {}, h('tr', {}, h('th', {}, t('live.meter')), h('th', {}, t('live.status')), h('th', {}, t('live.lastSeen')), h('th', { class: 'num' }, t('live.flow')), h('th', { class: 'num' }, t('live.todayVolume')), h('th', { class: 'spark-col' }, t('live.trend', { hours: SPARK_HOURS })))),
      tbody,
    ),
    h('p', { class: 'note' }, t('live.staleNote')),
  );

  const paintStatus = (row: Row): void => {
    row.status.textContent = row.online ? t('live.online') : t('live.offline');
    row.status.className = `badge ${row.online ? 'ok' : 'bad'}`;
    if (row.lastSeenMs === null) {
      row.lastSeen.textContent = t('live.never');
      row.lastSeen.className = 'stale';
      return;
    }
    const age = Date.now() - row.lastSeenMs;
    const stale = age > STALE_AFTER_INTERVALS * row.meter.intervalSec * 1000;
    row.lastSeen.textContent = ago(ctx, age);
    row.lastSeen.title = `${formatDateTime(locale, ctx.tz, row.lastSeenMs, true)} (${ctx.tz})`;
    row.lastSeen.className = stale ? 'stale' : '';
    if (stale) row.lastSeen.title += ` · ${t('live.stale')}`;
  };
  const paintReading = (row: Row, reading: ApiReading): void => {
    row.flow.textContent = formatNumber(locale, reading.flow, 2);
    row.flow.title = `${formatDateTime(locale, ctx.tz, Date.parse(reading.ts), true)} (${ctx.tz})`;
  };
  const paintToday = (row: Row): void => {
    row.today.textContent = formatNumber(locale, row.todayVolumeM3, 2);
  };

  for (const meter of pilot.meters) {
    const cell = (label: string, cls = ''): HTMLTableCellElement => h('td', { class: cls, 'data-label': label });
    const tr = h('tr', { 'data-meter': meter.id });
    const alertsSlot = h('span', { class: 'alert-slot' });
    const nameCell = h('td', { class: 'meter' }, h('a', { href: `#/meter/${encodeURIComponent(meter.id)}` }, h('strong', {}, meter.id)), alertsSlot, h('span', { class: 'label' }, meter.label ?? ''), h('span', { class: 'label' }, `${meter.site} · ${t(`role.${meter.role}`)}`));
    const statusCell = cell(t('live.status'));
    const lastSeenCell = cell(t('live.lastSeen'));
    const flowCell = cell(t('live.flow'), 'num flow');
    const todayCell = cell(t('live.todayVolume'), 'num');
    const sparkCell = cell(t('live.trend', { hours: SPARK_HOURS }), 'spark-col');
    const status = h('span');
    const lastSeen = h('span');
    statusCell.append(status);
    lastSeenCell.append(lastSeen);
    tr.append(nameCell, statusCell, lastSeenCell, flowCell, todayCell, sparkCell);
    tbody.append(tr);
    const row: Row = {
      meter,
      tr,
      alerts: alertsSlot,
      status,
      lastSeen,
      flow: flowCell,
      today: todayCell,
      online: meter.online,
      lastSeenMs: meter.lastSeen ? Date.parse(meter.lastSeen) : null,
      todayVolumeM3: null,
      lastTotalM3: meter.lastReading?.total ?? null,
      spark: { xs: [], ys: [], plot: null },
    };
    rows.set(meter.id, row);
    if (meter.lastReading) paintReading(row, meter.lastReading);
    else flowCell.textContent = '—';
    paintStatus(row);
    paintToday(row);
    void loadHistory(row, sparkCell);
  }

  async function loadHistory(row: Row, sparkCell: HTMLElement): Promise<void> {
    const now = Date.now();
    const midnight = localMidnightMs(ctx.tz, localDate(ctx.tz, now));
    // From the bucket before local midnight: its last total is the day's starting total.
    const fromMs = Math.min(midnight - 5 * 60_000, now - SPARK_HOURS * 3_600_000);
    try {
      const body = await getJson<{ buckets: Bucket[] }>(`/api/v1/meters/${encodeURIComponent(row.meter.id)}/readings?from=${fromMs}&to=${now + 60_000}&every=${SPARK_BUCKET}`);
      let base: number | null = null;
      let volume = 0;
      let previous: number | null = null;
      for (const bucket of body.buckets) {
        const ts = Date.parse(bucket.ts);
        if (bucket.total !== null) {
          if (ts < midnight) base = bucket.total;
          else {
            const from = previous ?? base;
            // Positive steps only: a totalizer reset is not negative volume (SPEC section 4).
            if (from !== null && bucket.total > from) volume += bucket.total - from;
            previous = bucket.total;
            if (from === null) previous = bucket.total;
          }
        }
        if (ts >= now - SPARK_HOURS * 3_600_000) {
          row.spark.xs.push(ts / 1000);
          row.spark.ys.push(bucket.flow);
        }
      }
      row.todayVolumeM3 = base === null && previous === null ? null : volume;
      if (previous !== null) row.lastTotalM3 = Math.max(row.lastTotalM3 ?? previous, previous);
      paintToday(row);
      row.spark.plot = sparkline(sparkCell, row.spark.xs, row.spark.ys);
    } catch {
      sparkCell.textContent = '—';
    }
  }

  /** Each meter's badge of firing alerts (SPEC section 9), repainted when they change. */
  const paintAlerts = (): void => {
    for (const row of rows.values()) {
      const badge = alertBadge(ctx, row.meter.id, ctx.alerts.firingOf(row.meter.id));
      row.alerts.replaceChildren(...(badge ? [' ', badge] : []));
    }
  };
  paintAlerts();
  const stopAlerts = ctx.alerts.subscribe(paintAlerts);

  const closeFeed = openLiveFeed(ctx, '', (reading) => {
    ctx.alerts.noteReading(reading);
    const row = rows.get(reading.meterId);
    if (!row) return;
    paintReading(row, reading);
    if (row.lastTotalM3 !== null && reading.total > row.lastTotalM3 && localDate(ctx.tz, Date.parse(reading.ts)) === localDate(ctx.tz, Date.now())) {
      row.todayVolumeM3 = (row.todayVolumeM3 ?? 0) + (reading.total - row.lastTotalM3);
    }
    row.lastTotalM3 = reading.total;
    row.lastSeenMs = reading.receivedAt ? Date.parse(reading.receivedAt) : Date.now();
    row.online = true; // it just sent a reading; the next pilot refresh brings its status message
    paintStatus(row);
    paintToday(row);
    if (row.spark.plot) {
      row.spark.xs.push(Date.parse(reading.ts) / 1000);
      row.spark.ys.push(reading.flow);
      const cutoff = Date.now() / 1000 - SPARK_HOURS * 3600;
      while ((row.spark.xs[0] ?? Infinity) < cutoff) {
        row.spark.xs.shift();
        row.spark.ys.shift();
      }
      row.spark.plot.setData([row.spark.xs, row.spark.ys]);
    }
    row.tr.classList.remove('flash');
    void row.tr.offsetWidth;
    row.tr.classList.add('flash');
  });

  const refresh = async (): Promise<void> => {
    try {
      const fresh = await getJson<{ meters: MeterView[] }>('/api/v1/pilot');
      for (const meter of fresh.meters) {
        const row = rows.get(meter.id);
        if (!row) continue;
        row.online = meter.online;
        const seen = meter.lastSeen ? Date.parse(meter.lastSeen) : null;
        if (seen !== null && (row.lastSeenMs === null || seen > row.lastSeenMs)) row.lastSeenMs = seen;
        paintStatus(row);
      }
    } catch {
      // The next refresh tries again; the feed indicator already tells the user.
    }
  };
  const repaint = setInterval(() => rows.forEach(paintStatus), 5_000);
  const reload = setInterval(() => void refresh(), 60_000);
  return () => {
    closeFeed();
    stopAlerts();
    clearInterval(repaint);
    clearInterval(reload);
    rows.forEach((row) => row.spark.plot?.destroy());
  };
};
