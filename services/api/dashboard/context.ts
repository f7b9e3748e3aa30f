import { createTranslator, pickLanguage, toLanguage } from '@flowpilot/i18n/translate';
import type { Language, Translate } from '@flowpilot/i18n/translate';
import languagesJson from 'flowpilot:strings';
import type { MeterView } from '../src/api-schemas.ts';
import type { AlertsFeed } from './alerts.ts';

/** The pilot as GET /api/v1/pilot returns it. */
export interface PilotView {
  id: string;
  name: string;
  timezone: string;
  nightWindow: { start: string; end: string };
  meters: MeterView[];
}

export const LANGUAGES: readonly Language[] = languagesJson.map((l) => toLanguage(l.code, l.strings));
const BASE = LANGUAGES.find((l) => l.code === 'en') ?? (LANGUAGES[0] as Language);
const STORAGE_KEY = 'flowpilot.lang';

/** What every view needs: the pilot, the chosen language, the pilot's zone and the firing alerts. */
export interface Context {
  pilot: PilotView;
  language: Language;
  t: Translate;
  locale: string;
  tz: string;
  alerts: AlertsFeed;
}

export function chosenLanguage(): Language {
  let stored: string | null = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage can be disabled; the language then follows the browser.
  }
  const code = pickLanguage(LANGUAGES.map((l) => l.code), stored, navigator.languages);
  return LANGUAGES.find((l) => l.code === code) ?? BASE;
}

export function rememberLanguage(code: string): void {
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // Not remembered, still applied.
  }
}

export function makeContext(pilot: PilotView, language: Language, alerts: AlertsFeed): Context {
  return { pilot, language, t: createTranslator(language, BASE), locale: language.locale, tz: pilot.timezone, alerts };
}

/** A view draws into `root` and returns its teardown (close streams, timers). */
export type View = (root: HTMLElement, ctx: Context, param: string | undefined) => (() => void) | void;
