import { formatDateTime, formatNumber } from '@flowpilot/i18n/format';
import uPlot from 'uplot';
import type { ApiReading, MeterView } from '../src/api-schemas.ts';
import { ruleText } from './alerts.ts';
import type { View } from './context.ts';
import { getJson, h } from './dom.ts';
import { openLiveFeed } from './live.ts';

const CHART_MINUTES = 60;

/** uPlot draws time axes in the browser's zone unless told; the pilot's zone is the one the user reads (SPEC section 3). */
export function tzDate(tz: string): (ts: number) => Date {
  return (ts) => uPlot.tzDate(new Date(ts * 1000), tz);
}

export const meterView: View = (root, ctx, id) => {
  const { t, locale, tz } = ctx;
  const meter = ctx.pilot.meters.find((m) => m.id === id);
  root.append(h('p', {}, h('a', { href: '#/live' }, `← ${t('meter.back')}`)));
  if (!meter) {
    root.append(h('p', { class: 'error' }, t('meter.notFound', { id: id ?? '' })));
    return;
  }
  root.append(h('h2', {}, meter.id, ' ', h('span', { class: 'label inline' }, meter.label ?? '')));
  const info = h('dl', { class: 'facts' });
  const fact = (label: string, value: string | number | undefined): void => {
    if (value === undefined || value === '') return;
    info.append(h('dt', {}, label), h('dd', {}, String(value)));
  };
  fact(t('meter.site'), meter.site);
  fact(t('meter.role'), t(`role.${meter.role}`));
  fact(t('meter.reference'), meter.reference);
  fact(t('meter.interval'), `${meter.intervalSec} s`);
  const statusDd = h('dd', {}, '');
  info.append(h('dt', {}, t('live.status')), statusDd);
  // The meter's firing alerts (SPEC section 9), linked to their history.
  const alertsDd = h('dd', { 'data-testid': 'meter-alerts' });
  info.append(h('dt', {}, t('alerts.meterAlerts')), alertsDd);
  const paintAlerts = (): void => {
    const firing = ctx.alerts.firingOf(meter.id);
    const history = h('a', { href: `#/alerts?meter=${encodeURIComponent(meter.id)}` }, t('alerts.banner.all'));
    if (firing.length === 0) alertsDd.replaceChildren(t('alerts.noneFiring'), ' · ', history);
    else alertsDd.replaceChildren(h('span', { class: 'bad-text' }, firing.map((a) => ruleText(ctx, a)).join(', ')), ' · ', history);
  };
  paintAlerts();
  const stopAlerts = ctx.alerts.subscribe(paintAlerts);
  root.append(info);

  const chartBox = h('div', { class: 'chart', 'data-testid': 'meter-chart' });
  root.append(h('h3', {}, t('meter.liveChart')), chartBox);
  const latestTable = h('tbody');
  const raw = h('pre', { class: 'raw', 'data-testid': 'raw-reading' });
  root.append(h('h3', {}, t('meter.latest')), h('table', { class: 'kv' }, h('thead', {}, h('tr', {}, h('th', {}, t('meter.field')), h('th', { class: 'num' }, t('meter.value')))), latestTable), h('details', {}, h('summary', {}, t('meter.raw')), raw));

  const showLatest = (reading: ApiReading | null, online: boolean): void => {
    statusDd.textContent = online ? t('live.online') : t('live.offline');
    statusDd.className = online ? 'ok-text' : 'bad-text';
    latestTable.replaceChildren();
    if (!reading) {
      latestTable.append(h('tr', {}, h('td', { colspan: '2' }, t('app.noData'))));
      raw.textContent = '';
      return;
    }
    const time = (iso: string | undefined): string => (iso ? `${formatDateTime(locale, tz, Date.parse(iso), true)}` : '—');
    const rowsOf: Array<[string, string]> = [
      [t('field.ts'), time(reading.ts)],
      [t('field.receivedAt'), time(reading.receivedAt)],
      [t('field.flow'), formatNumber(locale, reading.flow, 3)],
      [t('field.total'), formatNumber(locale, reading.total, 3)],
      [t('field.totalReverse'), formatNumber(locale, reading.totalReverse, 3)],
      [t('field.velocity'), formatNumber(locale, reading.velocity, 3)],
      [t('field.pressure'), formatNumber(locale, reading.pressure, 2)],
      [t('field.temperature'), formatNumber(locale, reading.temperature, 1)],
      [t('field.battery'), formatNumber(locale, reading.battery, 0)],
      [t('field.rssi'), formatNumber(locale, reading.rssi, 0)],
      [t('field.seq'), String(reading.seq)],
      [t('field.alarms'), reading.alarms.length ? reading.alarms.map((a) => t(`alarm.${a}`)).join(', ') : '—'],
    ];
    for (const [label, value] of rowsOf) latestTable.append(h('tr', {}, h('td', {}, label), h('td', { class: 'num' }, value)));
    raw.textContent = JSON.stringify(reading, null, 2);
  };
  showLatest(meter.lastReading, meter.online);

  const xs: number[] = [];
  const ys: number[] = [];
  let plot: uPlot | null = null;
  const width = (): number => Math.max(280, chartBox.clientWidth || root.clientWidth - 16);
  const draw = (): void => {
    plot = new uPlot(
      {
        width: width(),
        height: 220,
        tzDate: tzDate(tz),
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [{}, { label: 'm³/h', size: 56 }],
        series: [{}, { label: t('field.flow'), stroke: '#2563eb', width: 2, points: { show: true, size: 4 } }],
      },
      [xs, ys],
      chartBox,
    );
  };
  const onResize = (): void => plot?.setSize({ width: width(), height: 220 });
  window.addEventListener('resize', onResize);

  void (async () => {
    try {
      const fresh = await getJson<MeterView>(`/api/v1/meters/${encodeURIComponent(meter.id)}`);
      showLatest(fresh.lastReading, fresh.online);
      const now = Date.now();
      const body = await getJson<{ readings: ApiReading[] }>(`/api/v1/meters/${encodeURIComponent(meter.id)}/readings?from=${now - CHART_MINUTES * 60_000}&to=${now + 60_000}`);
      for (const r of body.readings) {
        xs.push(Date.parse(r.ts) / 1000);
        ys.push(r.flow);
      }
    } catch (error) {
      root.append(h('p', { class: 'error' }, t('app.loadFailed', { what: meter.id, message: (error as Error).message })));
    }
    draw();
  })();

  const closeFeed = openLiveFeed(ctx, `?meter=${encodeURIComponent(meter.id)}`, (reading) => {
    ctx.alerts.noteReading(reading);
    showLatest(reading, true);
    const x = Date.parse(reading.ts) / 1000;
    if (xs.length && x <= (xs.at(-1) as number)) return;
    xs.push(x);
    ys.push(reading.flow);
    while ((xs[0] ?? Infinity) < x - CHART_MINUTES * 60) {
      xs.shift();
      ys.shift();
    }
    plot?.setData([xs, ys]);
  });
  return () => {
    closeFeed();
    stopAlerts();
    window.removeEventListener('resize', onResize);
    plot?.destroy();
  };
};
