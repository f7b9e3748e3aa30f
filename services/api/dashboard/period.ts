import { addDays, localDate } from '@flowpilot/metrics';
import type { Context } from './context.ts';
import { h } from './dom.ts';

/** The chosen period, kept across views and reloads in the URL's query (#/results?from=…&to=…). */
export interface Period {
  from: string;
  to: string;
}

export function defaultPeriod(ctx: Context): Period {
  const today = localDate(ctx.tz, Date.now());
  return { from: addDays(today, -6), to: today };
}

/**
 * The API's query for a period: its first date and the day after its last, as bare dates. The
 * API's window rules (services/api/src/window.ts) read them as local midnights of the pilot's
 * zone and clamp a `to` later than now, so an unfinished day counts only its past.
 */
export function periodQuery(period: Period): string {
  return `from=${period.from}&to=${addDays(period.to, 1)}`;
}

export function periodFromHash(ctx: Context): Period {
  const query = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const fallback = defaultPeriod(ctx);
  const valid = (s: string | null): s is string => s !== null && /^\d{4}-\d{2}-\d{2}$/.test(s);
  const from = query.get('from');
  const to = query.get('to');
  return { from: valid(from) ? from : fallback.from, to: valid(to) ? to : fallback.to };
}

/** From / to date inputs (local dates of the pilot) and quick choices; `onChange` gets a valid period. */
export function periodPicker(ctx: Context, period: Period, onChange: (period: Period) => void): HTMLElement {
  const { t } = ctx;
  const from = h('input', { type: 'date', name: 'from', value: period.from, required: true });
  const to = h('input', { type: 'date', name: 'to', value: period.to, required: true });
  const error = h('span', { class: 'error', hidden: true }, t('period.invalid'));
  const form = h(
    'form',
    { class: 'period' },
    h('label', {}, t('period.from'), ' ', from),
    h('label', {}, t('period.to'), ' ', to),
    h('button', { type: 'submit' }, t('period.apply')),
    error,
  );
  const quick = (days: number, label: string): HTMLButtonElement => {
    const button = h('button', { type: 'button', class: 'link' }, label);
    button.addEventListener('click', () => {
      const today = localDate(ctx.tz, Date.now());
      from.value = addDays(today, -(days - 1));
      to.value = today;
      form.requestSubmit();
    });
    return button;
  };
  form.append(quick(7, t('period.last7')), quick(14, t('period.last14')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const ok = from.value !== '' && to.value !== '' && from.value <= to.value;
    error.hidden = ok;
    if (ok) onChange({ from: from.value, to: to.value });
  });
  return form;
}
