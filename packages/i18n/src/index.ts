/** The public surface of @flowpilot/i18n: strings files and the formats shared by the dashboard and the PDF report. */
export { BASE_LANGUAGE, createTranslator, pickLanguage, toLanguage } from './translate.ts';
export type { Language, Strings, Translate } from './translate.ts';
export { ERROR_DIGITS, formatDate, formatDateTime, formatDurationMs, formatErrorPct, formatLatencyMs, formatLocale, formatMpePct, formatNumber, formatRatioPct, formatUtcOffset } from './format.ts';
export { STRINGS_DIR, loadLanguages } from './load.ts';
