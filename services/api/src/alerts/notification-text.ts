import { BASE_LANGUAGE, createTranslator, formatDurationMs, formatUtcOffset, loadLanguages } from '@flowpilot/i18n';
import type { Language } from '@flowpilot/i18n';
import type { AlertRule, AlertTransition } from './types.ts';

/**
 * What an alert's e-mail says (SPEC section 9), in the pilot's language and time zone: a field
 * engineer reads it on a phone, so the subject names the problem and the meter, and the body
 * says when, what the rule means and what to do. Texts are the `notify.*` keys of
 * packages/i18n (en, ru, kk, ko); a language that lacks one falls back to English key by key.
 */

export interface NotificationPilot {
  id: string;
  name: string;
  /** IANA zone: every time in the message is local to it, and says so. */
  timezone: string;
  /** `en`, `ru`, `kk`, `ko`: the strings file to use, English where it lacks a text. */
  language: string;
}

/** What the pilot file says of a meter, to name it the way people on site do. */
export interface NotifiedMeter {
  id: string;
  label?: string | undefined;
  site?: string | undefined;
}

export interface NotificationText {
  subject: string;
  /** Plain text: what every mail client shows. */
  text: string;
  /** The same content as simple HTML, for clients that prefer it. */
  html: string;
}

export interface NotificationTextOptions {
  pilot: NotificationPilot;
  meters?: readonly NotifiedMeter[];
  /** The strings files (loadLanguages() unless given). */
  languages?: readonly Language[];
}

export type NotificationRenderer = (transition: AlertTransition) => NotificationText;

const zonedFormats = new Map<string, Intl.DateTimeFormat>();

function zonedFormat(timeZone: string): Intl.DateTimeFormat {
  let format = zonedFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    zonedFormats.set(timeZone, format);
  }
  return format;
}

/**
 * A moment as local time with its zone named, e.g. "2026-11-25 03:12 (Asia/Almaty, UTC+05:00)":
 * the same digits in every language (ISO order cannot be misread as day/month or month/day), and
 * the offset of that very moment (summer time included).
 */
export function formatZonedTime(ms: number, timeZone: string): string {
  const parts = Object.fromEntries(zonedFormat(timeZone).formatToParts(ms).map((part) => [part.type, part.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} (${timeZone}, UTC${formatUtcOffset(timeZone, ms)})`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** The unit of a rule's `threshold` and `value` details (the rules of alerts/rules.ts). */
const RULE_UNITS: Partial<Record<AlertRule, 'm3h' | 'pct' | 's'>> = { leak: 'm3h', low_battery: 'pct', totalizer: 'pct', store_lag: 's' };

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** Creates the renderer of one pilot's messages (the translator and the meters' names are looked up once). */
export function createNotificationRenderer(options: NotificationTextOptions): NotificationRenderer {
  const { pilot } = options;
  const languages = options.languages ?? loadLanguages();
  const base = languages.find((language) => language.code === BASE_LANGUAGE);
  if (!base) throw new Error(`The strings of the base language (${BASE_LANGUAGE}) are missing`);
  const language = languages.find((candidate) => candidate.code === pilot.language) ?? base;
  const t = createTranslator(language, base);
  const numberFormat = new Intl.NumberFormat(language.locale, { maximumFractionDigits: 3 });
  const meters = new Map((options.meters ?? []).map((meter) => [meter.id, meter]));

  /** A translation that exists, else null (the translator returns the key itself when nothing has it). */
  const maybe = (key: string, params?: Record<string, string | number>): string | null => {
    const text = t(key, params);
    return text === key ? null : text;
  };

  const time = (iso: string | null): string | null => {
    if (iso === null) return null;
    const ms = Date.parse(iso);
    return Number.isFinite(ms) ? formatZonedTime(ms, pilot.timezone) : iso;
  };

  const detailValue = (rule: AlertRule, key: string, value: string | number): string => {
    if (typeof value === 'number') {
      const unit = key === 'intervalSec' ? 's' : key === 'threshold' || key === 'value' ? RULE_UNITS[rule] : undefined;
      return unit ? `${numberFormat.format(value)} ${t(`notify.unit.${unit}`)}` : numberFormat.format(value);
    }
    if (ISO_TIME.test(value)) return time(value) ?? value;
    // Alarm flags are the wire names (SPEC section 1): the dashboard's words for them, where it has some.
    if (key === 'alarm' || key === 'alarms') return value.split(/[,\s]+/).filter(Boolean).map((flag) => maybe(`alarm.${flag}`) ?? flag).join(', ');
    return value;
  };

  return (transition) => {
    const { alert, kind } = transition;
    const title = maybe(`notify.rule.${alert.rule}.title`) ?? alert.rule;
    const meter = alert.meterId === null ? undefined : (meters.get(alert.meterId) ?? { id: alert.meterId });
    const subjectOf = meter ? meter.id : t('notify.scope.pipelineShort');
    const subject = t(`notify.subject.${kind}`, { pilotId: pilot.id, title, subject: subjectOf });

    const facts: [string, string][] = [[t('notify.field.pilot'), `${pilot.name} (${pilot.id})`]];
    if (meter) {
      const named = [meter.label, meter.site ? t('notify.field.site', { site: meter.site }) : undefined].filter(Boolean).join(', ');
      facts.push([t('notify.field.meter'), named ? `${meter.id} — ${named}` : meter.id]);
    } else {
      facts.push([t('notify.field.scope'), t('notify.scope.pipeline')]);
    }
    facts.push([t('notify.field.since'), time(alert.since) ?? '—']);
    if (kind === 'resolved') {
      const until = time(alert.until);
      if (until) facts.push([t('notify.field.until'), until]);
      const lastedMs = alert.until === null ? NaN : Date.parse(alert.until) - Date.parse(alert.since);
      if (Number.isFinite(lastedMs)) facts.push([t('notify.field.duration'), formatDurationMs(lastedMs)]);
    }
    // A null detail is a fact the rule could not know (no battery level, no reason given): nothing to show.
    const details = Object.entries(alert.details)
      .filter((entry): entry is [string, string | number] => entry[1] !== null)
      .map(([key, value]) => `${maybe(`notify.detail.${key}`) ?? key}: ${detailValue(alert.rule, key, value)}`);
    if (details.length > 0) facts.push([t('notify.field.details'), details.join('; ')]);
    if (alert.message) facts.push([t('notify.field.message'), alert.message]);

    const sections: [string, string][] = [[t('notify.section.meaning'), maybe(`notify.rule.${alert.rule}.meaning`) ?? alert.message]];
    if (kind === 'fired') {
      const action = maybe(`notify.rule.${alert.rule}.action`);
      if (action) sections.push([t('notify.section.action'), action]);
    } else {
      const resolved = maybe(`notify.rule.${alert.rule}.resolved`);
      if (resolved) sections.push([t('notify.section.resolved'), resolved]);
    }
    const headline = t(`notify.headline.${kind}`, { title });
    const footer = t(`notify.footer.${kind}`);
    const idLine = t('notify.field.alertId', { id: alert.id });

    const text = [
      headline,
      '',
      ...facts.map(([label, value]) => `${label}: ${value}`),
      ...sections.flatMap(([heading, body]) => ['', `${heading}:`, body]),
      '',
      footer,
      idLine,
      '',
      '-- ',
      t('notify.signature', { pilotName: pilot.name }),
      '',
    ].join('\n');

    const color = kind === 'fired' ? '#b42318' : '#067647';
    const html = [
      '<!doctype html><html><body style="font-family:sans-serif;font-size:15px;line-height:1.4;max-width:40em">',
      `<h2 style="color:${color};margin:0 0 .6em">${escapeHtml(headline)}</h2>`,
      '<table style="border-collapse:collapse">',
      ...facts.map(
        ([label, value]) =>
          `<tr><th style="text-align:left;vertical-align:top;padding:2px 12px 2px 0;white-space:nowrap">${escapeHtml(label)}</th><td style="padding:2px 0">${escapeHtml(value)}</td></tr>`,
      ),
      '</table>',
      ...sections.map(([heading, body]) => `<h3 style="margin:1em 0 .3em">${escapeHtml(heading)}</h3><p style="margin:0">${escapeHtml(body)}</p>`),
      `<p style="margin-top:1.2em">${escapeHtml(footer)}<br><small>${escapeHtml(idLine)}</small></p>`,
      `<p style="color:#667085"><small>${escapeHtml(t('notify.signature', { pilotName: pilot.name }))}</small></p>`,
      '</body></html>',
    ].join('\n');

    return { subject, text, html };
  };
}
