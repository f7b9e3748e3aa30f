/** The public surface of @flowpilot/report: the evaluator's PDF report and the core of `flowpilot report`. */
export { collectReportData } from './collect.ts';
export type { CollectOptions } from './collect.ts';
export { createPilotReportPdf, progressBar, reportLanguages, resolveLanguage, writeReport } from './create-report.ts';
export type { PilotReportOptions, WriteReportOptions } from './create-report.ts';
export { kpiRows } from './kpi.ts';
export { metersFromMetricsJson } from './metrics-json.ts';
export { FONTS_DIR, renderReportPdf } from './pdf.ts';
export type { RenderOptions } from './pdf.ts';
export { localDate, localDays, localMidnightMs } from './period.ts';
export { barChartSvg, errorCurveSvg, logTicks, niceTicks } from './svg-charts.ts';
export type { FetchErrorCurve, FetchMetrics, ReportData, ReportDay, ReportMeterMetrics, ReportPilot, ReportProgress } from './types.ts';
