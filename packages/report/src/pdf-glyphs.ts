import { inflateSync } from 'node:zlib';

/**
 * For the tests (not exported from index.ts): what the PDF's text operators draw, font by font.
 * pdfkit and svg-to-pdfkit write every text as hex strings of 2-byte glyph ids of an Identity-H
 * font (`[<0012002a> 0 <…>] TJ`, `<0012> Tj`); a character the font lacks is drawn with glyph 0,
 * `.notdef`, the empty box a reader calls tofu. Counting glyph 0 in the content streams catches
 * a missing glyph wherever it is drawn (tables, paragraphs, the charts), whatever the text was.
 */

export interface FontGlyphs {
  /** The font's BaseFont, e.g. `BZZZZZ+NanumGothic` (subset tag and name), or its resource name. */
  font: string;
  /** Glyphs drawn with this font. */
  glyphs: number;
  /** Of which `.notdef` (glyph 0): a character the font has no glyph for. */
  notdef: number;
}

/** The objects of the file: number → dictionary text and, for a stream, its (inflated) data. */
function objects(pdf: Uint8Array): Map<number, { dict: string; data: Buffer | null }> {
  const bytes = Buffer.from(pdf);
  const text = bytes.toString('latin1');
  const found = new Map<number, { dict: string; data: Buffer | null }>();
  const header = /(\d+) 0 obj\s*<<((?:(?!endobj)[\s\S])*?)>>\s*(stream\r?\n|endobj)/g;
  for (let match = header.exec(text); match; match = header.exec(text)) {
    const [, id, dict = '', tail = ''] = match;
    if (!tail.startsWith('stream')) {
      found.set(Number(id), { dict, data: null });
      continue;
    }
    const start = match.index + match[0].length;
    const length = /\/Length (\d+)(?! \d+ R)/.exec(dict);
    const end = length ? start + Number(length[1]) : text.indexOf('endstream', start);
    const raw = bytes.subarray(start, end);
    let data: Buffer | null = raw;
    if (/\/Filter\s*\/FlateDecode/.test(dict)) {
      try {
        data = inflateSync(raw);
      } catch {
        data = null;
      }
    }
    found.set(Number(id), { dict, data });
    header.lastIndex = end;
  }
  return found;
}

/** Glyphs drawn per font over every content stream (pages and form XObjects) of `pdf`. */
export function glyphsByFont(pdf: Uint8Array): FontGlyphs[] {
  const objs = objects(pdf);
  // Font resources (`/F3 12 0 R`) to their BaseFont.
  const baseFontOf = new Map<string, string>();
  for (const { dict } of objs.values()) {
    for (const [, resource = '', ref = ''] of dict.matchAll(/\/(F\d+) (\d+) 0 R/g)) {
      const base = /\/BaseFont \/([^\s/<>[\]()]+)/.exec(objs.get(Number(ref))?.dict ?? '')?.[1];
      if (base) baseFontOf.set(resource, base);
    }
  }
  const counts = new Map<string, FontGlyphs>();
  const count = (font: string, hex: string): void => {
    const entry = counts.get(font) ?? { font, glyphs: 0, notdef: 0 };
    const digits = hex.replace(/\s+/g, '');
    for (let i = 0; i < digits.length; i += 4) {
      entry.glyphs += 1;
      if (/^0+$/.test(digits.slice(i, i + 4))) entry.notdef += 1;
    }
    counts.set(font, entry);
  };
  for (const { dict, data } of objs.values()) {
    // Content streams only: no font program, image, ICC profile, metadata or CMap.
    if (!data || /\/Length1|\/Subtype\s*\/Image|\/Type\s*\/Metadata|\/N \d/.test(dict)) continue;
    const content = data.toString('latin1');
    if (!/\bBT\b/.test(content) || content.includes('begincmap')) continue;
    let font = '?';
    const ops = /\/([A-Za-z0-9_.+-]+)\s+[-\d.]+\s+Tf|<([0-9A-Fa-f\s]*)>\s*Tj|\[([^\]]*)\]\s*TJ/g;
    for (const [, resource, shown, array] of content.matchAll(ops)) {
      if (resource !== undefined) font = baseFontOf.get(resource) ?? resource;
      else if (shown !== undefined) count(font, shown);
      else for (const [, hex = ''] of (array ?? '').matchAll(/<([0-9A-Fa-f\s]*)>/g)) count(font, hex);
    }
  }
  return [...counts.values()].sort((a, b) => a.font.localeCompare(b.font));
}
