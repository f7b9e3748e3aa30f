/** The public surface of @flowpilot/report: the evaluator's PDF report and the core of `flowpilot report`. */
export { collectReportData } from './collect.ts';
export type { CollectOptions } from './collect.ts';
export { createPilotReportPdf, progressBar, reportLanguages, resolveLanguage, writeReport } from './create-report.ts';
export type { PilotReportOptions, WriteReportOptions } from './create-report.ts';
export { kpiRows } from './kpi.ts';
export { metersFromMetricsJson } from './metrics-json.ts';
export { FONTS_DIR, renderReportPdf } from './pdf.ts';
export { DEFAULT_REPORT_FONT_OPTIONS, DEJAVU_SANS, NANUM_GOTHIC, resolveReportFonts } from './fonts.ts';
export type { FontFamilySource, ReportFontOptions, ReportFonts } from './fonts.ts';
export type { RenderOptions } from './pdf.ts';
export { createHttpMetricsSource } from './metrics-source.ts';
export type { DailyMetrics, DayMetrics, HttpMetricsSourceOptions, MetricsSource, SourceMeterMetrics, WindowMetrics } from './metrics-source.ts';
export { barChartSvg, errorCurveSvg, logTicks, mpeEnvelope, niceTicks } from './svg-charts.ts';
export type { ReportData, ReportDay, ReportMeterMetrics, ReportPilot, ReportProgress, ReportProvenance } from './types.ts';
