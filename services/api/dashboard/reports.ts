import type { View } from './context.ts';
import { LANGUAGES } from './context.ts';
import { h } from './dom.ts';
import { periodFromHash, periodPicker, periodQuery } from './period.ts';
import type { Period } from './period.ts';

export const reportsView: View = (root, ctx) => {
  const { t } = ctx;
  const links = h('div', { class: 'downloads' });
  const lang = h('select', { name: 'pdf-lang' }, ...LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === ctx.language.code }, l.name)));
  const meter = h('select', { name: 'meter' }, ...ctx.pilot.meters.map((m) => h('option', { value: m.id }, m.id)));
  const every = h('select', { name: 'every' }, h('option', { value: '' }, t('reports.raw')), ...['1m', '15m', '1h', '1d'].map((e) => h('option', { value: e, selected: e === '15m' }, e)));
  let period = periodFromHash(ctx);
  const paint = (): void => {
    const q = periodQuery(period);
    const readings = `/api/v1/reports/readings.csv?meter=${encodeURIComponent(meter.value)}&${q}${every.value ? `&every=${every.value}` : ''}`;
    links.replaceChildren(
      h('section', { class: 'card' }, h('h4', {}, t('reports.pdf')), h('label', {}, t('reports.pdfLanguage'), ' ', lang), ' ', h('a', { class: 'button', href: `/api/v1/reports/pilot.pdf?${q}&lang=${lang.value}`, download: '', 'data-testid': 'pdf-link' }, t('reports.download'))),
      h('section', { class: 'card' }, h('h4', {}, t('reports.metricsCsv')), h('a', { class: 'button', href: `/api/v1/reports/metrics.csv?${q}`, download: '' }, t('reports.download'))),
      h('section', { class: 'card' }, h('h4', {}, t('reports.readingsCsv')), h('label', {}, t('reports.meter'), ' ', meter), ' ', h('label', {}, t('reports.every'), ' ', every), ' ', h('a', { class: 'button', href: readings, download: '' }, t('reports.download'))),
    );
  };
  for (const select of [lang, meter, every]) select.addEventListener('change', paint);
  const change = (p: Period): void => {
    period = p;
    history.replaceState(null, '', `#/reports?from=${p.from}&to=${p.to}`);
    paint();
  };
  root.append(h('h2', {}, t('reports.title')), h('p', {}, t('reports.intro')), periodPicker(ctx, period, change), links);
  paint();
};
