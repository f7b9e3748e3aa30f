/**
 * Strings of the dashboard and the PDF report. One JSON file per language in `strings/`
 * (`en.json`, `ru.json`, …): adding a language is adding a file. Browser-safe: no I/O here
 * (the dashboard bundles this module; `load.ts` reads the files on the server).
 */

import { formatLocale } from './format.ts';

/** Key → text; `{name}` marks a parameter. `meta.name` (the language's own name) and `meta.locale` (a BCP 47 tag for numbers and dates) are required. */
export type Strings = Readonly<Record<string, string>>;

export interface Language {
  /** The file's base name: `en`, `ru`, `kk`, … */
  code: string;
  /** The language's name in itself, for the language menu. */
  name: string;
  /**
   * BCP 47 tag for Intl number and date formats: `meta.locale`, or a locale that writes them the
   * same way where this runtime lacks its data (format.ts formatLocale: Kazakh in Chromium).
   */
  locale: string;
  strings: Strings;
}

export type Translate = (key: string, params?: Readonly<Record<string, string | number>>) => string;

/** English is complete by construction (a test checks every file against it); other files may lag behind and fall back to it. */
export const BASE_LANGUAGE = 'en';

export function toLanguage(code: string, strings: Strings): Language {
  return { code, name: strings['meta.name'] ?? code, locale: formatLocale(strings['meta.locale'] ?? code), strings };
}

/**
 * `t(key, params)`: the language's text, else the base language's, else the key itself (a
 * visible key is a bug someone will report; an empty label is one nobody notices).
 */
export function createTranslator(language: Language, base: Language): Translate {
  return (key, params) => {
    const text = language.strings[key] ?? base.strings[key] ?? key;
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
  };
}

/** The language to use: the user's choice if it exists, else the first browser preference we have, else the base. */
export function pickLanguage(available: readonly string[], chosen: string | null | undefined, preferred: readonly string[] = []): string {
  if (chosen && available.includes(chosen)) return chosen;
  for (const tag of preferred) {
    const primary = tag.toLowerCase().split('-')[0] ?? '';
    if (available.includes(primary)) return primary;
  }
  return available.includes(BASE_LANGUAGE) ? BASE_LANGUAGE : (available[0] ?? BASE_LANGUAGE);
}
