import { formatDateTime, formatDurationMs, formatNumber } from '@flowpilot/i18n/format';
import { addDays, localDate, localMidnightMs } from '@flowpilot/metrics';
import type { LiveReading } from '../src/api-schemas.ts';
import type { Alert, AlertState } from '../src/alerts/types.ts';
import type { Context, View } from './context.ts';
import { ApiError, getJson, h } from './dom.ts';
import { periodFromHash, periodPicker } from './period.ts';
import type { Period } from './period.ts';

/**
 * Alerts in the dashboard (SPEC section 9, issue 13): the firing alerts polled from
 * GET /api/v1/alerts?state=firing (`createAlertsFeed`), the banner at the top of every page
 * (`createAlertsBanner`), a badge on each meter's row of the Live page (`alertBadge`), and the
 * Alerts page with the history of a period (`alertsView`, #/alerts).
 */

/** How often the firing alerts are asked for; a reading that may change them asks sooner (`noteReading`). */
export const ALERTS_POLL_MS = 15_000;
/** No two requests closer than this, however many readings arrive. */
const MIN_GAP_MS = 5_000;

/**
 * What the API said last: `forbidden` (the role may not read alerts), `disabled` (this API
 * process evaluates none: no data dir to keep them in), `missing` (an API without the route).
 */
export type AlertsStatus = 'pending' | 'ok' | 'forbidden' | 'disabled' | 'missing' | 'failed';

/** GET /api/v1/alerts: `disabled` says why an API process evaluates no alerts (its list is then empty). */
interface AlertsBody {
  alerts: Alert[];
  disabled?: string;
}

export interface AlertsFeed {
  /** The firing alerts, newest first (the last good answer). */
  firing(): readonly Alert[];
  /** The firing alerts of one meter, newest first. */
  firingOf(meterId: string): readonly Alert[];
  status(): AlertsStatus;
  /** Called on every change of the list or the status; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
  /** A live reading arrived: ask again soon when it may change the alerts (an alarm, a meter with a firing alert). */
  noteReading(reading: Pick<LiveReading, 'meterId' | 'alarms'>): void;
  /** Ask now (throttled). */
  refresh(): void;
  close(): void;
}

/** Newest first by `since`; a stable sort, so alerts that began together keep the API's order. */
const byNewest = (a: Alert, b: Alert): number => Date.parse(b.since) - Date.parse(a.since);

/** Polls the firing alerts every 15 s while the page is visible, and when a reading may change them. */
export function createAlertsFeed(pollMs = ALERTS_POLL_MS): AlertsFeed {
  let firing: readonly Alert[] = [];
  let status: AlertsStatus = 'pending';
  let signature = '';
  const listeners = new Set<() => void>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let inFlight = false;
  let again = false;
  let lastAskedMs = 0;
  let closed = false;

  const schedule = (ms: number): void => {
    if (closed) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => void poll(), ms);
  };

  async function poll(): Promise<void> {
    timer = null;
    if (closed) return;
    // A hidden tab does not poll; it asks again when it is shown.
    if (document.visibilityState === 'hidden') return;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    lastAskedMs = Date.now();
    let next: { firing: readonly Alert[]; status: AlertsStatus };
    try {
      const body = await getJson<AlertsBody>('/api/v1/alerts?state=firing');
      next = { firing: body.alerts.filter((a) => a.state === 'firing').sort(byNewest), status: body.disabled === undefined ? 'ok' : 'disabled' };
    } catch (error) {
      const code = error instanceof ApiError ? error.status : 0;
      // A failed request keeps the last list: the banner does not flicker on a network blip.
      next = { firing: code === 403 || code === 404 ? [] : firing, status: code === 403 ? 'forbidden' : code === 404 ? 'missing' : 'failed' };
    } finally {
      inFlight = false;
    }
    // What the banner and the badges show: a still-firing alarm may name another alarm since.
    const nextSignature = `${next.status}|${next.firing.map((a) => `${a.id}:${a.rule}:${a.meterId ?? ''}:${a.since}:${String(a.details['alarm'] ?? '')}`).join(',')}`;
    if (nextSignature !== signature) {
      signature = nextSignature;
      firing = next.firing;
      status = next.status;
      for (const listener of listeners) listener();
    }
    if (again) {
      again = false;
      schedule(MIN_GAP_MS);
    } else schedule(pollMs);
  }

  const refresh = (): void => {
    const waitMs = Math.max(0, lastAskedMs + MIN_GAP_MS - Date.now());
    schedule(waitMs);
  };
  const onVisibility = (): void => {
    if (document.visibilityState === 'visible') refresh();
  };
  document.addEventListener('visibilitychange', onVisibility);
  schedule(0);

  return {
    firing: () => firing,
    firingOf: (meterId) => firing.filter((a) => a.meterId === meterId),
    status: () => status,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    noteReading(reading) {
      if (reading.alarms.length > 0 || firing.some((a) => a.meterId === reading.meterId)) refresh();
    },
    refresh,
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}

/** The alert's rule in words; an `alarm` says which alarm the meter raised. */
export function ruleText(ctx: Context, alert: Pick<Alert, 'rule' | 'details'>): string {
  const alarm = alert.details['alarm'];
  if (alert.rule === 'alarm' && typeof alarm === 'string' && alarm !== '') {
    return ctx.t('alerts.rule.alarmNamed', { alarm: alarm.split(',').map((a) => ctx.t(`alarm.${a.trim()}`)).join(', ') });
  }
  return ctx.t(`alerts.rule.${alert.rule}`);
}

/** The meter an alert is about, or the pipeline for store_lag and influx_down. */
function subjectText(ctx: Context, alert: Pick<Alert, 'meterId'>): string {
  return alert.meterId ?? ctx.t('alerts.pipeline');
}

const time = (ctx: Context, iso: string): string => formatDateTime(ctx.locale, ctx.tz, Date.parse(iso));

/**
 * The banner of firing alerts (in index.html, above every page). Its list is an aria-live
 * "polite" region updated item by item: an alert that is still firing keeps its element, so a
 * screen reader announces the alerts that are new, never the whole list again. `quiet` (a new
 * language) repaints every item without announcing.
 */
export function createAlertsBanner(root: HTMLElement, feed: AlertsFeed): { paint(ctx: Context, quiet?: boolean): void } {
  const title = h('h2', { id: 'alerts-banner-title' });
  const all = h('a', { href: '#/alerts', 'data-testid': 'alerts-banner-all' });
  const head = h('div', { class: 'alerts-banner-head' }, title, all);
  // The region is in the page from the start (index.html) so that its first content is announced.
  const list = (root.querySelector('ul') as HTMLUListElement | null) ?? h('ul');
  list.setAttribute('aria-live', 'polite');
  root.replaceChildren(head, list);
  root.setAttribute('aria-labelledby', title.id);
  let ctx: Context | null = null;
  /** Each alert's element and the text it shows, by alert id. */
  const items = new Map<string, { li: HTMLLIElement; key: string }>();

  const itemFor = (c: Context, alert: Alert): { li: HTMLLIElement; key: string } => {
    const rule = ruleText(c, alert);
    const since = c.t('alerts.since', { time: time(c, alert.since) });
    const key = `${c.language.code}|${rule}|${alert.meterId ?? ''}|${since}`;
    const known = items.get(alert.id);
    if (known && known.key === key) return known;
    const subject = alert.meterId === null ? h('span', { class: 'subject' }, subjectText(c, alert)) : h('a', { class: 'subject', href: `#/meter/${encodeURIComponent(alert.meterId)}` }, alert.meterId);
    const li = h('li', { 'data-alert-id': alert.id, 'data-rule': alert.rule, 'data-meter': alert.meterId ?? undefined }, h('strong', { class: 'rule' }, rule), ' · ', subject, ' · ', h('span', { class: 'since' }, since));
    return { li, key };
  };

  const paint = (c: Context, quiet = false): void => {
    ctx = c;
    const firing = feed.firing();
    root.classList.toggle('none', firing.length === 0);
    root.dataset['count'] = String(firing.length);
    title.textContent = c.t('alerts.banner.title', { n: firing.length });
    all.textContent = c.t('alerts.banner.all');
    head.hidden = firing.length === 0;
    if (quiet) list.setAttribute('aria-live', 'off');
    const wanted = firing.map((alert) => ({ id: alert.id, ...itemFor(c, alert) }));
    const keep = new Set(wanted.map((w) => w.li));
    for (const child of [...list.children]) if (!keep.has(child as HTMLLIElement)) child.remove();
    items.clear();
    // Newest first, moving nothing that is already in place (a move would be announced again).
    wanted.forEach((w, i) => {
      items.set(w.id, { li: w.li, key: w.key });
      if (list.children[i] !== w.li) list.insertBefore(w.li, list.children[i] ?? null);
    });
    if (quiet) setTimeout(() => list.setAttribute('aria-live', 'polite'), 0);
  };
  feed.subscribe(() => {
    if (ctx) paint(ctx);
  });
  return { paint };
}

/** The badge on a meter's row: how many alerts of the meter fire, their rules in its label; null when none. */
export function alertBadge(ctx: Context, meterId: string, alerts: readonly Alert[]): HTMLElement | null {
  if (alerts.length === 0) return null;
  const rules = alerts.map((a) => ruleText(ctx, a)).join(', ');
  const label = ctx.t('alerts.badge', { n: alerts.length, rules });
  return h(
    'a',
    { class: 'badge alert', href: `#/alerts?meter=${encodeURIComponent(meterId)}&state=firing`, title: label, 'aria-label': label, 'data-testid': 'alert-badge', 'data-count': String(alerts.length) },
    h('span', { 'aria-hidden': 'true' }, `⚠ ${alerts.length}`),
  );
}

/**
 * A short description from the alert's details, in the page's language, for the rules whose
 * figures it knows; otherwise the API's own message (English, SPEC section 9).
 */
export function detailText(ctx: Context, alert: Alert): string {
  const { t, locale } = ctx;
  const num = (key: string): number | null => {
    const value = alert.details[key];
    return typeof value === 'number' && Number.isFinite(value) ? value : null;
  };
  const text = (key: string): string | null => {
    const value = alert.details[key];
    return typeof value === 'string' && value !== '' ? value : null;
  };
  const value = num('value');
  const threshold = num('threshold');
  const at = (iso: string | null): string | null => (iso === null || Number.isNaN(Date.parse(iso)) ? null : formatDateTime(locale, ctx.tz, Date.parse(iso)));
  if (alert.rule === 'stale' && threshold !== null) {
    const last = at(text('lastReadingAt'));
    return last === null ? t('alerts.detail.staleNever', { threshold }) : t('alerts.detail.stale', { time: last, threshold });
  }
  const statusAt = at(text('statusAt'));
  if (alert.rule === 'offline' && statusAt !== null) return t('alerts.detail.offline', { time: statusAt });
  const alarm = text('alarm');
  if (alert.rule === 'alarm' && alarm !== null) return t('alerts.detail.alarm', { alarm: alarm.split(',').map((a) => t(`alarm.${a.trim()}`)).join(', ') });
  if (value !== null && threshold !== null) {
    switch (alert.rule) {
      case 'low_battery':
        return t('alerts.detail.low_battery', { value: formatNumber(locale, value, 0), threshold: formatNumber(locale, threshold, 0) });
      case 'leak':
        return t('alerts.detail.leak', { value: formatNumber(locale, value, 2), threshold: formatNumber(locale, threshold, 2) });
      case 'totalizer':
        return t('alerts.detail.totalizer', { value: formatNumber(locale, value, 2), threshold: formatNumber(locale, threshold, 2) });
      case 'rejected':
        return t('alerts.detail.rejected', { value: formatNumber(locale, value, 0), threshold: formatNumber(locale, threshold, 0) });
      default:
        break;
    }
  }
  return alert.message;
}

type StateFilter = AlertState | 'all';
const STATE_FILTERS: readonly StateFilter[] = ['all', 'firing', 'resolved'];

/** The Alerts page: the alerts of a period (default the last 7 local days), newest first, filtered by state and meter. */
export const alertsView: View = (root, ctx) => {
  const { t, locale, tz } = ctx;
  const query = new URLSearchParams(location.hash.split('?')[1] ?? '');
  let period = periodFromHash(ctx);
  let state: StateFilter = STATE_FILTERS.find((s) => s === query.get('state')) ?? 'all';
  let meter = query.get('meter') ?? '';
  const stateSelect = h('select', { name: 'state', 'data-testid': 'alerts-state' }, ...STATE_FILTERS.map((s) => h('option', { value: s, selected: s === state }, t(`alerts.filter.${s}`))));
  const meterSelect = h(
    'select',
    { name: 'meter', 'data-testid': 'alerts-meter' },
    h('option', { value: '', selected: meter === '' }, t('alerts.allMeters')),
    ...ctx.pilot.meters.map((m) => h('option', { value: m.id, selected: m.id === meter }, m.id)),
  );
  const summary = h('p', { class: 'note', 'data-testid': 'alerts-summary' });
  const body = h('div', { class: 'alerts-body' });
  let generation = 0;

  const remember = (): void => {
    const params = new URLSearchParams({ from: period.from, to: period.to });
    if (state !== 'all') params.set('state', state);
    if (meter !== '') params.set('meter', meter);
    history.replaceState(null, '', `#/alerts?${params.toString()}`);
  };

  async function load(): Promise<void> {
    remember();
    const mine = ++generation;
    // The local days of the period, as epoch ms (the pilot's zone, SPEC section 3).
    const fromMs = localMidnightMs(tz, period.from);
    const toMs = localMidnightMs(tz, addDays(period.to, 1));
    let alerts: Alert[];
    try {
      const answer = await getJson<AlertsBody>(`/api/v1/alerts?state=${state}&from=${fromMs}&to=${toMs}`);
      if (answer.disabled !== undefined) {
        if (mine !== generation) return;
        summary.textContent = '';
        body.replaceChildren(h('p', { class: 'note', 'data-testid': 'alerts-disabled' }, t('alerts.disabled'), ' ', h('small', {}, answer.disabled)));
        return;
      }
      alerts = answer.alerts;
    } catch (error) {
      if (mine !== generation) return;
      const status = error instanceof ApiError ? error.status : 0;
      summary.textContent = '';
      body.replaceChildren(h('p', { class: 'error' }, status === 403 ? t('alerts.forbidden') : t('alerts.unavailable', { message: (error as Error).message })));
      return;
    }
    if (mine !== generation) return;
    const shown = alerts.filter((a) => meter === '' || a.meterId === meter).sort(byNewest);
    const firing = shown.filter((a) => a.state === 'firing').length;
    summary.textContent = t('alerts.summary', { firing, resolved: shown.length - firing });
    body.replaceChildren(shown.length === 0 ? h('p', { 'data-testid': 'alerts-empty' }, t('alerts.none')) : table(shown));
  }

  function table(alerts: readonly Alert[]): HTMLElement {
    const columns = ['alerts.col.state', 'alerts.col.rule', 'alerts.col.meter', 'alerts.col.since', 'alerts.col.until', 'alerts.col.duration', 'alerts.col.details'] as const;
    const now = Date.now();
    const tbody = h('tbody');
    for (const alert of alerts) {
      const sinceMs = Date.parse(alert.since);
      const untilMs = alert.until === null ? null : Date.parse(alert.until);
      const duration = formatDurationMs((untilMs ?? now) - sinceMs);
      const cell = (key: (typeof columns)[number], cls: string, ...children: Array<Node | string>): HTMLTableCellElement => h('td', { class: cls, 'data-label': t(key) }, ...children);
      tbody.append(
        h(
          'tr',
          { 'data-alert-id': alert.id, 'data-state': alert.state, 'data-rule': alert.rule, 'data-meter': alert.meterId ?? undefined },
          cell('alerts.col.state', 'state', h('span', { class: `badge ${alert.state === 'firing' ? 'bad' : 'ok'}` }, t(`alerts.state.${alert.state}`))),
          cell('alerts.col.rule', 'rule', h('strong', {}, ruleText(ctx, alert))),
          cell('alerts.col.meter', 'meter', alert.meterId === null ? subjectText(ctx, alert) : h('a', { href: `#/meter/${encodeURIComponent(alert.meterId)}` }, alert.meterId)),
          cell('alerts.col.since', 'since num', h('time', { datetime: alert.since }, formatDateTime(locale, tz, sinceMs))),
          cell('alerts.col.until', 'until num', alert.until === null ? '—' : h('time', { datetime: alert.until }, formatDateTime(locale, tz, untilMs as number))),
          cell('alerts.col.duration', 'duration num', alert.until === null ? t('alerts.ongoing', { duration }) : duration),
          cell('alerts.col.details', 'details', detailText(ctx, alert)),
        ),
      );
    }
    return h('table', { class: 'alerts', 'data-testid': 'alerts-table' }, h('thead', {}, h('tr', {}, ...columns.map((key) => h('th', { scope: 'col' }, t(key))))), tbody);
  }

  stateSelect.addEventListener('change', () => {
    state = STATE_FILTERS.find((s) => s === stateSelect.value) ?? 'all';
    void load();
  });
  meterSelect.addEventListener('change', () => {
    meter = meterSelect.value;
    void load();
  });
  const filters = h('div', { class: 'alerts-filters' }, h('label', {}, t('alerts.filter.state'), ' ', stateSelect), h('label', {}, t('alerts.filter.meter'), ' ', meterSelect));
  root.append(
    h('h2', {}, t('alerts.title')),
    h('p', { class: 'note' }, t('alerts.intro')),
    periodPicker(ctx, period, (p: Period) => {
      period = p;
      void load();
    }),
    filters,
    summary,
    body,
  );
  void load();
  // The history follows the banner: when the firing alerts change, so may this period's list.
  const unsubscribe = ctx.alerts.subscribe(() => {
    if (period.to >= localDate(tz, Date.now())) void load();
  });
  return () => {
    generation++;
    unsubscribe();
  };
};
