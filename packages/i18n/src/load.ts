import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASE_LANGUAGE, toLanguage } from './translate.ts';
import type { Language, Strings } from './translate.ts';

/** One `<code>.json` per language: the dashboard and the PDF report both read this folder. */
export const STRINGS_DIR = fileURLToPath(new URL('../strings/', import.meta.url));

/** Every language in `dir`, the base language first, the rest by code. */
export function loadLanguages(dir = STRINGS_DIR): Language[] {
  const files = readdirSync(dir).filter((name) => name.endsWith('.json'));
  const languages = files.map((name) => {
    const code = basename(name, '.json');
    const strings = JSON.parse(readFileSync(`${dir}/${name}`, 'utf8')) as Strings;
    return toLanguage(code, strings);
  });
  return languages.sort((a, b) => (a.code === BASE_LANGUAGE ? -1 : b.code === BASE_LANGUAGE ? 1 : a.code.localeCompare(b.code)));
}
