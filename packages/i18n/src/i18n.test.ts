import { describe, expect, it } from 'vitest';
import { formatErrorPct, formatLatencyMs, formatNumber, formatUtcOffset } from './format.ts';
import { loadLanguages } from './load.ts';
import { BASE_LANGUAGE, createTranslator, pickLanguage } from './translate.ts';

describe('strings files', () => {
  const languages = loadLanguages();
  const base = languages.find((language) => language.code === BASE_LANGUAGE);

  it('has English and Russian, English first', () => {
    expect(languages.map((language) => language.code).slice(0, 1)).toEqual(['en']);
    expect(languages.map((language) => language.code)).toContain('ru');
  });

  it.each(languages.map((language) => [language.code, language] as const))('%s has every key of English, with the same parameters', (_code, language) => {
    expect(base).toBeDefined();
    for (const [key, text] of Object.entries(base?.strings ?? {})) {
      expect(language.strings[key], `${language.code}: ${key}`).toBeTypeOf('string');
      const params = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string).sort();
      expect(params(language.strings[key] as string), `${language.code}: ${key}`).toEqual(params(text));
    }
    expect(() => new Intl.NumberFormat(language.locale)).not.toThrow();
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
  });
});

describe('formats', () => {
  it('signs errors and uses the locale decimal separator', () => {
    expect(formatErrorPct('en-GB', 1.23456)).toBe('+1.235 %');
    expect(formatErrorPct('ru-RU', -0.5)).toMatch(/^[-−]0,500 %$/);
    expect(formatErrorPct('en-GB', null)).toBe('—');
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
