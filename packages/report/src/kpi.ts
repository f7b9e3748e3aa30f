import { formatDurationMs, formatLatencyMs, formatNumber, formatRatioPct } from '@flowpilot/i18n';
import type { Translate } from '@flowpilot/i18n';
import type { ReportMeterMetrics } from './types.ts';

/**
 * One meter's key figures (SPEC section 4) as label/value rows in the report's language: the
 * per-meter KPI table of the PDF. The dashboard's table shows the same figures as columns.
 */
export function kpiRows(m: ReportMeterMetrics, t: Translate, locale: string): Array<[string, string]> {
  const alarms = Object.entries(m.alarms ?? {})
    .filter(([, count]) => count > 0)
    .map(([name, count]) => `${t(`alarm.${name}`)}: ${count}`)
    .join(', ');
  // SPEC section 4: null is unknown (the API had no dead-letter store at hand), shown as n/a, never 0.
  const rejected = m.rejected === null ? null : Object.entries(m.rejected).filter(([, count]) => count > 0);
  const rejectedTotal = rejected?.reduce((sum, [, count]) => sum + count, 0) ?? 0;
  const latency = m.latencyMs;
  // An answer from an API older than the backfill split has none: shown as 0 backfilled.
  const backfilled = latency.backfilled ?? { count: 0, share: null, maxMs: null };
  const night = m.minNightFlow;
  // The forward mean (SPEC section 4) with the night's reverse volume beside it when there was any.
  const nightText = (meanM3h: number | null, date: string | null, reverseM3: number | null | undefined): string =>
    `${formatNumber(locale, meanM3h, 3)} (${date ?? ''}${reverseM3 === null || reverseM3 === undefined || reverseM3 <= 0 ? '' : `, ${t('kpi.nightReverse', { volume: formatNumber(locale, reverseM3, 3) })}`})`;
  return [
    [t('kpi.completeness'), `${formatRatioPct(locale, m.completeness)} (${m.received} / ${m.expected})`],
    [t('kpi.delivery'), formatRatioPct(locale, m.delivery)],
    [t('kpi.gaps'), `${m.gaps.count}${m.gaps.count > 0 ? ` · ${t('kpi.longestGap').toLowerCase()} ${formatDurationMs(m.gaps.longestMs)}` : ''}`],
    [t('kpi.latencyP95'), latency.p95 === null ? '—' : `${formatLatencyMs(locale, latency.p95)} (p50 ${formatLatencyMs(locale, latency.p50)}, p99 ${formatLatencyMs(locale, latency.p99)}, max ${formatLatencyMs(locale, latency.max)})`],
    // SPEC section 4: readings that arrived in a backfill array are counted apart from the latency; replays are left out.
    [
      t('pdf.backfilled'),
      backfilled.count === 0
        ? '0'
        : t('pdf.backfilledValue', { count: backfilled.count, share: formatRatioPct(locale, backfilled.share), max: formatLatencyMs(locale, backfilled.maxMs) }),
    ],
    [t('pdf.replayed'), String(latency.replayed ?? 0)],
    [t('kpi.volume'), formatNumber(locale, m.volumeM3, 3)],
    [t('kpi.flowMean'), `${formatNumber(locale, m.flow.meanM3h, 3)} (min ${formatNumber(locale, m.flow.minM3h, 3)}, max ${formatNumber(locale, m.flow.maxM3h, 3)})`],
    [t('kpi.nightFlow'), night.minM3h === null ? '—' : `${nightText(night.minM3h, night.minNight, night.minReverseM3)}; ${nightText(night.latestM3h, night.latestNight, night.latestReverseM3)}`],
    [t('kpi.totalizer'), m.totalizerConsistency.percent === null ? '—' : `${formatNumber(locale, m.totalizerConsistency.percent, 3)} %`],
    [t('kpi.alarms'), alarms || '0'],
    [t('kpi.rejected'), rejected === null ? t('kpi.unknown') : rejectedTotal === 0 ? '0' : `${rejectedTotal} (${rejected.map(([reason, count]) => `${reason}: ${count}`).join(', ')})`],
  ];
}
