/**
 * Number and time formats shared by the dashboard and the PDF report, so that a figure reads
 * the same in both (and a test can look for it in either). Browser-safe.
 *
 * The decimal mark, digit grouping and date order are Intl's for the language's `meta.locale`
 * (en-GB 1,234.5 and 25/11/2026; ru-RU and kk-KZ 1 234,5 with a no-break space and 25.11.2026;
 * ko-KR 1,234.5 and 2026. 11. 25.): nothing here or in a caller may assume a `.` or a `,`.
 * Unit symbols after a number (%, ms, s, min, h, d) are the same in every language.
 */

/**
 * Locales that write numbers and dates as another one does (CLDR): Kazakh as Russian in
 * Kazakhstan (1 234,5; 25.11.2026, 03:12). Chromium's ICU data has no Kazakh: it still says it
 * supports kk-KZ, and formats it as ICU's root locale ("1,234.5", "2026-11-25 03:12", "2026 M11
 * 25"). Where the two differ, the runtime lacks the locale's data and its twin's formats are used.
 */
const SAME_FORMATS: Readonly<Record<string, string>> = { kk: 'ru-KZ' };

const PROBE_MS = Date.UTC(2026, 10, 25, 3, 12);

/** A number and a date as `locale` writes them here, to compare runtimes' data. */
export function formatProbe(locale: string): string {
  const number = new Intl.NumberFormat(locale, { minimumFractionDigits: 1 }).format(1234.5);
  const date = new Intl.DateTimeFormat(locale, { timeZone: 'UTC', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(PROBE_MS);
  return `${number} ${date}`;
}

const formatLocales = new Map<string, string>();

/**
 * The tag to give Intl for `locale`'s numbers and dates: `locale` itself, or its twin of
 * SAME_FORMATS where this runtime has no data for it (`probe` is for the tests).
 */
export function formatLocale(locale: string, probe: (locale: string) => string = formatProbe): string {
  const known = probe === formatProbe ? formatLocales.get(locale) : undefined;
  if (known !== undefined) return known;
  const twin = SAME_FORMATS[locale.toLowerCase().split('-')[0] ?? ''];
  let resolved = locale;
  try {
    if (twin !== undefined && probe(locale) !== probe(twin)) resolved = twin;
  } catch {
    // A tag this runtime's Intl refuses: Intl itself will say so where it is used.
  }
  if (probe === formatProbe) formatLocales.set(locale, resolved);
  return resolved;
}

const numberFormats = new Map<string, Intl.NumberFormat>();

function numberFormat(locale: string, digits: number, signed: boolean): Intl.NumberFormat {
  const key = `${locale}|${digits}|${signed}`;
  let format = numberFormats.get(key);
  if (!format) {
    format = new Intl.NumberFormat(formatLocale(locale), {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
      signDisplay: signed ? 'exceptZero' : 'auto',
    });
    numberFormats.set(key, format);
  }
  return format;
}

/** A number with a fixed count of decimals; `—` for null (no data). */
export function formatNumber(locale: string, value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  // A value that rounds to zero is shown as 0, never "-0.00".
  return numberFormat(locale, digits, false).format(Math.abs(value) < 0.5 * 10 ** -digits ? 0 : value);
}

/** A latency: milliseconds while they are what matters (under 10 s), a duration beyond (backfilled data waits days). */
export function formatLatencyMs(locale: string, ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  return Math.abs(ms) < 10_000 ? `${formatNumber(locale, ms, 0)} ms` : formatDurationMs(ms);
}

/** A ratio 0…1 as per cent, e.g. 0.9931 → "99.31 %". */
export function formatRatioPct(locale: string, ratio: number | null | undefined, digits = 2): string {
  return ratio === null || ratio === undefined || !Number.isFinite(ratio) ? '—' : `${numberFormat(locale, digits, false).format(ratio * 100)} %`;
}

/** Digits of an accuracy error: a class 1 meter's MPE is ±1 %, so thousandths of a per cent still matter. */
export const ERROR_DIGITS = 3;

/** A signed error in per cent, e.g. "+1.234 %", "−0.500 %", "0.000 %"; `—` for null. */
export function formatErrorPct(locale: string, errorPct: number | null | undefined): string {
  return errorPct === null || errorPct === undefined || !Number.isFinite(errorPct) ? '—' : `${numberFormat(locale, ERROR_DIGITS, true).format(errorPct)} %`;
}

/** "±2 %" style limit; MPE values are whole or short decimals, shown with up to 2 decimals. */
export function formatMpePct(locale: string, mpePct: number): string {
  const text = new Intl.NumberFormat(formatLocale(locale), { maximumFractionDigits: 2 }).format(mpePct);
  return `±${text} %`;
}

/** A duration in ms as "2 h 05 min", "45 s", "3 d 4 h" (units stay SI symbols in every language). */
export function formatDurationMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${String(min % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

const dateFormats = new Map<string, Intl.DateTimeFormat>();

function dateFormat(locale: string, timeZone: string, withTime: boolean, withSeconds: boolean): Intl.DateTimeFormat {
  const key = `${locale}|${timeZone}|${withTime}|${withSeconds}`;
  let format = dateFormats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(formatLocale(locale), {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      ...(withTime ? { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' as const } : {}),
      ...(withSeconds ? { second: '2-digit' } : {}),
    });
    dateFormats.set(key, format);
  }
  return format;
}

/** A moment as a local date and time in the pilot's zone (the caller labels the zone once per page). */
export function formatDateTime(locale: string, timeZone: string, ms: number, withSeconds = false): string {
  return dateFormat(locale, timeZone, true, withSeconds).format(ms);
}

export function formatDate(locale: string, timeZone: string, ms: number): string {
  return dateFormat(locale, timeZone, false, false).format(ms);
}

/** The zone's offset at `ms` as "+05:00", for the label "Asia/Almaty (UTC+05:00)". */
export function formatUtcOffset(timeZone: string, ms: number): string {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' }).formatToParts(ms);
  const name = parts.find((part) => part.type === 'timeZoneName')?.value ?? 'GMT';
  const offset = name.replace('GMT', '');
  return offset === '' ? '+00:00' : offset;
}
