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
  const rejected = Object.entries(m.rejected ?? {}).filter(([, count]) => count > 0);
  const rejectedTotal = rejected.reduce((sum, [, count]) => sum + count, 0);
  const latency = m.latencyMs;
  const night = m.minNightFlow;
  return [
    [t('kpi.completeness'), `${formatRatioPct(locale, m.completeness)} (${m.received} / ${m.expected})`],
    [t('kpi.delivery'), formatRatioPct(locale, m.delivery)],
    [t('kpi.gaps'), `${m.gaps.count}${m.gaps.count > 0 ? ` · ${t('kpi.longestGap').toLowerCase()} ${formatDurationMs(m.gaps.longestMs)}` : ''}`],
    [t('kpi.latencyP95'), latency.p95 === null ? '—' : `${formatLatencyMs(locale, latency.p95)} (p50 ${formatLatencyMs(locale, latency.p50)}, p99 ${formatLatencyMs(locale, latency.p99)}, max ${formatLatencyMs(locale, latency.max)})`],
    [t('kpi.volume'), formatNumber(locale, m.volumeM3, 3)],
    [t('kpi.flowMean'), `${formatNumber(locale, m.flow.meanM3h, 3)} (min ${formatNumber(locale, m.flow.minM3h, 3)}, max ${formatNumber(locale, m.flow.maxM3h, 3)})`],
    [t('kpi.nightFlow'), night.minM3h === null ? '—' : `${formatNumber(locale, night.minM3h, 3)} (${night.minNight ?? ''}); ${formatNumber(locale, night.latestM3h, 3)} (${night.latestNight ?? ''})`],
    [t('kpi.totalizer'), m.totalizerConsistency.percent === null ? '—' : `${formatNumber(locale, m.totalizerConsistency.percent, 3)} %`],
    [t('kpi.alarms'), alarms || '0'],
    [t('kpi.rejected'), rejectedTotal === 0 ? '0' : `${rejectedTotal} (${rejected.map(([reason, count]) => `${reason}: ${count}`).join(', ')})`],
  ];
}
