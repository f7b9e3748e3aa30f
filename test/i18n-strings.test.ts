import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_LANGUAGE, createTranslator, loadLanguages } from '@flowpilot/i18n';
import type { Language } from '@flowpilot/i18n';
import { EXCLUSION_REASONS } from '@flowpilot/metrics';
import { ALARMS, METER_ROLES, PILOT_LANGUAGES } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { createNotificationRenderer } from '../services/api/src/alerts/notification-text.ts';
import { ALERT_RULES } from '../services/api/src/alerts/types.ts';
import type { AlertTransition } from '../services/api/src/alerts/types.ts';

// Issue 14: every language of the strings files (packages/i18n/strings/*.json) is complete, for
// the dashboard, the PDF report and the notifications alike. English is the reference: a key
// missing in a language, a key English does not have, or a `{parameter}` that differs fails here.

const languages = loadLanguages();
const base = languages.find((l) => l.code === BASE_LANGUAGE) as Language;
const others = languages.filter((l) => l !== base);
const ROOT = join(import.meta.dirname, '..');

/** `{name}` parameters of a text, with repeats, sorted. */
const params = (text: string): string[] => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string).sort();

describe('the strings files', () => {
  it('speak every language of SPEC section 5 (`lang`) and of the pilot file\'s `language`', () => {
    expect(languages.map((l) => l.code).sort()).toEqual([...PILOT_LANGUAGES].sort());
  });

  it.each(languages.map((l) => [l.code, l] as const))('%s names itself and its locale, one ICU supports as it is', (_code, language) => {
    expect(language.strings['meta.name']).toBeTruthy();
    expect(language.locale).toMatch(/^[a-z]{2}-[A-Z]{2}$/);
    // Node 20's full ICU formats the locale itself, not a fallback to its language or to English.
    expect(Intl.NumberFormat.supportedLocalesOf([language.locale])).toEqual([language.locale]);
    expect(Intl.DateTimeFormat.supportedLocalesOf([language.locale])).toEqual([language.locale]);
  });

  it.each(others.map((l) => [l.code, l] as const))('%s has every key of English and no other, each with English\'s parameters', (code, language) => {
    const missing = Object.keys(base.strings).filter((key) => !(key in language.strings));
    const extra = Object.keys(language.strings).filter((key) => !(key in base.strings));
    expect(missing, `${code} lacks`).toEqual([]);
    expect(extra, `${code} has keys English has not`).toEqual([]);
    for (const [key, text] of Object.entries(base.strings)) {
      const translated = language.strings[key] as string;
      expect(translated.trim(), `${code}: ${key} is empty`).not.toBe('');
      expect(params(translated), `${code}: ${key} parameters`).toEqual(params(text));
      // No broken brace: every `{` opens a parameter.
      expect(translated.replace(/\{\w+\}/g, ''), `${code}: ${key} braces`).not.toMatch(/[{}]/);
    }
  });

  it.each(others.map((l) => [l.code, l] as const))('%s leaves nothing in English (a text equal to English is symbols, units and names only)', (code, language) => {
    const untranslated = Object.entries(base.strings)
      .filter(([key, text]) => key !== 'meta.locale' && language.strings[key] === text)
      .filter(([, text]) => /[A-Za-z]{4,}/.test(text.replace(/\{\w+\}/g, '').replace(/FlowPilot/g, '')))
      .map(([key]) => key);
    expect(untranslated, code).toEqual([]);
  });

  it('have every key the code asks for by name', () => {
    // `t('key')` and `maybe('key')` in the dashboard, the PDF report, the sign-in page and the notifications.
    const files = [
      ...readdirSync(join(ROOT, 'services/api/dashboard')).map((name) => `services/api/dashboard/${name}`),
      ...readdirSync(join(ROOT, 'packages/report/src')).map((name) => `packages/report/src/${name}`),
      'services/api/src/sign-in-page.ts',
      'services/api/src/alerts/notification-text.ts',
    ].filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'));
    const asked = new Set<string>();
    for (const file of files) {
      for (const match of readFileSync(join(ROOT, file), 'utf8').matchAll(/\b(?:t|maybe)\(\s*'([a-z][\w]*(?:\.[\w]+)+)'/g)) asked.add(match[1] as string);
    }
    // The keys the code builds from data.
    for (const alarm of ALARMS) asked.add(`alarm.${alarm}`);
    for (const reason of EXCLUSION_REASONS) asked.add(`exclusion.${reason}`);
    for (const role of METER_ROLES) asked.add(`role.${role}`);
    for (const verdict of ['pass', 'fail', 'inconclusive', 'insufficient']) for (const prefix of ['verdict', 'pdf.legend', 'results.verdictMeans']) asked.add(`${prefix}.${verdict}`);
    for (const rule of ALERT_RULES) {
      asked.add(`alerts.rule.${rule}`);
      for (const part of ['title', 'meaning', 'action', 'resolved']) asked.add(`notify.rule.${rule}.${part}`);
    }
    expect(asked.size).toBeGreaterThan(250);
    expect([...asked].filter((key) => !(key in base.strings)).sort()).toEqual([]);
  });
});

describe('notifications in the pilot\'s language (pilot.language)', () => {
  const pilot = { id: 'almaty-2026', name: 'Almaty water utility', timezone: 'Asia/Almaty' };
  const meters = [{ id: 'ALM-PS3-DUT1', label: 'Pump station 3 outlet', site: 'PS3' }];
  const transitions = (rule: (typeof ALERT_RULES)[number]): AlertTransition[] => {
    const alert = { id: 'alert-42', rule, meterId: rule === 'influx_down' || rule === 'store_lag' ? null : 'ALM-PS3-DUT1', state: 'firing' as const, since: '2026-11-24T22:12:00Z', until: null, message: 'English message for the logs', details: { threshold: 0.5, value: 0.8 } };
    return [
      { kind: 'fired', alert },
      { kind: 'resolved', alert: { ...alert, state: 'resolved', until: '2026-11-25T00:17:30Z' } },
    ];
  };

  it.each(others.map((l) => [l.code, l] as const))('writes every rule\'s message in %s, with no English text of the strings', (code, language) => {
    const render = createNotificationRenderer({ pilot: { ...pilot, language: code }, meters, languages });
    const t = createTranslator(language, base);
    // The words of every English notify.* text, between its parameters (not the product's name, not units).
    const english = Object.entries(base.strings)
      .filter(([key]) => key.startsWith('notify.'))
      .flatMap(([, text]) => text.split(/\{\w+\}/).map((piece) => piece.replace(/FlowPilot/g, '').replace(/^[^A-Za-z]+|[^A-Za-z]+$/g, '')))
      .filter((piece) => /[A-Za-z]{4,}/.test(piece));
    for (const rule of ALERT_RULES) {
      for (const transition of transitions(rule)) {
        const message = render(transition);
        expect(message.subject, `${code} ${rule}`).toContain(t(`notify.rule.${rule}.title`));
        expect(message.text, `${code} ${rule}`).toContain(t(`notify.rule.${rule}.meaning`));
        const shown = `${message.subject}\n${message.text}`.replace('English message for the logs', '');
        for (const text of english) expect(shown, `${code} ${rule} ${transition.kind}: "${text}"`).not.toMatch(new RegExp(`\\b${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`));
      }
    }
  });
});
