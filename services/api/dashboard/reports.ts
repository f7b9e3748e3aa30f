import type { View } from './context.ts';
import { LANGUAGES } from './context.ts';
import { h } from './dom.ts';
import { periodFromHash, periodPicker, periodQuery } from './period.ts';
import type { Period } from './period.ts';

export const reportsView: View = (root, ctx) => {
  const { t } = ctx;
  const links = h('div', { class: 'downloads' });
  const lang = h('select', { name: 'pdf-lang' }, ...LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === ctx.language.code }, l.name)));
  // '' is every meter: readings.csv then has a meter column, readings.xlsx a sheet per meter.
  const meter = h(
    'select',
    { name: 'meter' },
    ...ctx.pilot.meters.map((m, i) => h('option', { value: m.id, selected: i === 0 }, m.id)),
    h('option', { value: '' }, t('reports.allMeters')),
  );
  const every = h('select', { name: 'every' }, h('option', { value: '' }, t('reports.raw')), ...['1m', '15m', '1h', '1d'].map((e) => h('option', { value: e, selected: e === '15m' }, e)));
  // Issue 14: semicolons, decimal commas and a byte-order mark for Excel in Russian (and other decimal-comma) locales.
  const excel = h('input', { type: 'checkbox', name: 'excel', 'data-testid': 'csv-excel' });
  let period = periodFromHash(ctx);
  const download = (href: string, label: string, testId: string) => h('a', { class: 'button', href, download: '', 'data-testid': testId }, label);
  const paint = (): void => {
    const q = periodQuery(period);
    const csv = excel.checked ? '&excel=true' : '';
    const readingsQuery = `${meter.value ? `meter=${encodeURIComponent(meter.value)}&` : ''}${q}${every.value ? `&every=${every.value}` : ''}`;
    links.replaceChildren(
      h('section', { class: 'card' }, h('h4', {}, t('reports.pdf')), h('label', {}, t('reports.pdfLanguage'), ' ', lang), ' ', download(`/api/v1/reports/pilot.pdf?${q}&lang=${lang.value}`, t('reports.download'), 'pdf-link')),
      h(
        'section',
        { class: 'card' },
        h('h4', {}, t('reports.metricsTable')),
        download(`/api/v1/reports/metrics.csv?${q}${csv}`, t('reports.downloadCsv'), 'metrics-csv'),
        ' ',
        download(`/api/v1/reports/metrics.xlsx?${q}`, t('reports.downloadXlsx'), 'metrics-xlsx'),
      ),
      h(
        'section',
        { class: 'card' },
        h('h4', {}, t('reports.readingsTable')),
        h('label', {}, t('reports.meter'), ' ', meter),
        ' ',
        h('label', {}, t('reports.every'), ' ', every),
        ' ',
        download(`/api/v1/reports/readings.csv?${readingsQuery}${csv}`, t('reports.downloadCsv'), 'readings-csv'),
        ' ',
        download(`/api/v1/reports/readings.xlsx?${readingsQuery}`, t('reports.downloadXlsx'), 'readings-xlsx'),
        h('p', { class: 'note' }, t('reports.xlsxNote', { zone: ctx.tz })),
      ),
      h('section', { class: 'card' }, h('h4', {}, t('reports.csvFormat')), h('label', {}, excel, ' ', t('reports.excelCsv')), h('p', { class: 'note' }, t('reports.excelCsvNote'))),
    );
  };
  for (const select of [lang, meter, every]) select.addEventListener('change', paint);
  excel.addEventListener('change', paint);
  const change = (p: Period): void => {
    period = p;
    history.replaceState(null, '', `#/reports?from=${p.from}&to=${p.to}`);
    paint();
  };
  root.append(h('h2', {}, t('reports.title')), h('p', {}, t('reports.intro')), periodPicker(ctx, period, change), links);
  paint();
};
