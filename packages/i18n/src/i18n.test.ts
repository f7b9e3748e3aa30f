import { describe, expect, it } from 'vitest';
import { formatDate, formatDateTime, formatErrorPct, formatLatencyMs, formatLocale, formatNumber, formatProbe, formatRatioPct, formatUtcOffset } from './format.ts';
import { loadLanguages } from './load.ts';
import { BASE_LANGUAGE, createTranslator, pickLanguage } from './translate.ts';

describe('strings files', () => {
  const languages = loadLanguages();
  const base = languages.find((language) => language.code === BASE_LANGUAGE);

  it('has English first, then Kazakh, Korean and Russian (SPEC section 5 `lang`)', () => {
    expect(languages.map((language) => language.code)).toEqual(['en', 'kk', 'ko', 'ru']);
    expect(languages.map((language) => [language.name, language.locale])).toEqual([
      ['English', 'en-GB'],
      ['Қазақша', 'kk-KZ'],
      ['한국어', 'ko-KR'],
      ['Русский', 'ru-RU'],
    ]);
  });

  it.each(languages.map((language) => [language.code, language] as const))('%s has every key of English, with the same parameters', (_code, language) => {
    expect(base).toBeDefined();
    for (const [key, text] of Object.entries(base?.strings ?? {})) {
      expect(language.strings[key], `${language.code}: ${key}`).toBeTypeOf('string');
      const params = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string).sort();
      expect(params(language.strings[key] as string), `${language.code}: ${key}`).toEqual(params(text));
    }
    // Node's ICU has the locale itself, not a fallback to its language or to English.
    expect(Intl.NumberFormat.supportedLocalesOf([language.locale])).toEqual([language.locale]);
    expect(Intl.DateTimeFormat.supportedLocalesOf([language.locale])).toEqual([language.locale]);
  });
});

describe('translator', () => {
  const en = { code: 'en', name: 'English', locale: 'en', strings: { a: 'Hello {who}', b: 'only English' } };
  const xx = { code: 'xx', name: 'X', locale: 'en', strings: { a: 'Salem {who}' } };

  it('fills parameters and falls back to the base language, then to the key', () => {
    const t = createTranslator(xx, en);
    expect(t('a', { who: 'Almaty' })).toBe('Salem Almaty');
    expect(t('b')).toBe('only English');
    expect(t('missing.key')).toBe('missing.key');
  });

  it('picks the stored choice, else a browser preference, else English', () => {
    expect(pickLanguage(['en', 'ru'], 'ru', ['en-US'])).toBe('ru');
    expect(pickLanguage(['en', 'ru'], 'kk', ['ru-RU', 'en'])).toBe('ru');
    expect(pickLanguage(['en', 'ru'], null, ['de-DE'])).toBe('en');
    expect(pickLanguage(['en', 'kk', 'ko', 'ru'], null, ['ko-KR', 'en-US'])).toBe('ko');
    expect(pickLanguage(['en', 'kk', 'ko', 'ru'], null, ['kk', 'ru-RU'])).toBe('kk');
  });
});

describe('formats', () => {
  it('signs errors and uses the locale decimal separator', () => {
    expect(formatErrorPct('en-GB', 1.23456)).toBe('+1.235 %');
    expect(formatErrorPct('ru-RU', -0.5)).toMatch(/^[-−]0,500 %$/);
    expect(formatErrorPct('en-GB', null)).toBe('—');
  });

  // Kazakh writes like Russian (1 234,5 with a no-break space; 25.11.2026), Korean like English
  // in numbers (1,234.5) and year first in dates (2026. 11. 25.).
  it.each([
    ['kk-KZ', '1\u00a0234,50', '-0,500 %', '25.11.2026, 03:12', '25.11.2026'],
    ['ko-KR', '1,234.50', '-0.500 %', '2026. 11. 25. 03:12', '2026. 11. 25.'],
  ])('formats numbers and dates in %s', (locale, number, error, dateTime, date) => {
    expect(formatNumber(locale, 1234.5, 2)).toBe(number);
    expect(formatErrorPct(locale, -0.5)).toMatch(new RegExp(`^${error.replace('-', '[-−]').replace('.', '\\.')}$`));
    expect(formatRatioPct(locale, 0.9931)).toBe(locale === 'kk-KZ' ? '99,31 %' : '99.31 %');
    const ms = Date.parse('2026-11-24T22:12:00Z');
    expect(formatDateTime(locale, 'Asia/Almaty', ms)).toBe(dateTime);
    expect(formatDate(locale, 'Asia/Almaty', ms)).toBe(date);
  });

  it('formats Kazakh as Russian in Kazakhstan does where the runtime has no Kazakh data (Chromium)', () => {
    // Node's full ICU has Kazakh: kk-KZ itself.
    expect(formatProbe('kk-KZ')).toBe(formatProbe('ru-KZ'));
    expect(formatLocale('kk-KZ')).toBe('kk-KZ');
    // Chromium's ICU data formats kk-KZ as the root locale does.
    const chromium = (locale: string): string => (locale.startsWith('kk') ? '1,234.5 2026-11-25 03:12' : formatProbe(locale));
    expect(formatLocale('kk-KZ', chromium)).toBe('ru-KZ');
    expect(formatLocale('ko-KR', chromium)).toBe('ko-KR');
    expect(formatLocale('ru-RU', chromium)).toBe('ru-RU');
  });

  it('labels a zone offset', () => {
    expect(formatUtcOffset('UTC', 0)).toBe('+00:00');
    expect(formatUtcOffset('Asia/Tokyo', 0)).toBe('+09:00');
  });
});

describe('formats for the KPI table', () => {
  it.each([
    [-0.0001, '0.00'],
    [-0.004, '0.00'],
    [-0.005, '-0.01'],
    [12.345, '12.35'],
  ])('formatNumber(%d) with 2 digits is %s', (value, text) => {
    expect(formatNumber('en', value, 2)).toBe(text);
  });

  it.each([
    [null, '—'],
    [850, '850 ms'],
    [9_999, '9,999 ms'],
    [10_000, '10 s'],
    [572_467_666, '6 d 15 h'],
  ])('formatLatencyMs(%s) is %s', (ms, text) => {
    expect(formatLatencyMs('en', ms)).toBe(text);
  });
});
