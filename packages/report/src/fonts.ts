import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlowPilotError } from '@flowpilot/schema';
import { create } from 'fontkit';
import type { Font } from 'fontkit';

/**
 * The fonts of the PDF report. PDF/A-2b embeds every font a page draws with, as a subset of the
 * glyphs it uses; pdfkit subsets TrueType outlines (glyf), so every family here is a .ttf.
 *
 * - DejaVu Sans, shipped in fonts/ with its licence: Latin, Cyrillic with the letters of Kazakh
 *   (ә ғ қ ң ө ұ ү һ і) and the symbols of the report (m³, ±, ≤, −, √, Σ, Δ). No Hangul.
 * - NanumGothic, from Debian's fonts-nanum (found at run time, not shipped): Hangul, Latin and
 *   Russian's Cyrillic, but none of Kazakh's own letters and no U+2212 minus sign.
 *
 * No Debian font has both Hangul and Kazakh's letters (Noto Sans CJK, an OpenType collection,
 * lacks the Kazakh letters too). So a language has its own family, and the other family is the
 * fallback for a text its own cannot draw: a pilot named in Kazakh in the Korean report, a meter
 * label in Hangul in the Kazakh one. A text goes to the first family that has every glyph of it;
 * a paragraph that joins a name in one script to words in another is drawn run by run (pdfkit
 * has no per-glyph fallback of its own).
 */

/** The fonts shipped with this package. */
export const FONTS_DIR = fileURLToPath(new URL('../fonts/', import.meta.url));

/** A family with a regular and a bold face, and where to look for them. */
export interface FontFamilySource {
  /** The name its faces are registered under in a document: `<name>` and `<name>-Bold`. */
  name: string;
  files: { regular: string; bold: string };
  /** Folders searched in order; the first holding both files is used. */
  dirs: readonly string[];
  /** The Debian package that installs the family, named in the error when it is missing. */
  debianPackage?: string;
}

export const DEJAVU_SANS: FontFamilySource = { name: 'DejaVuSans', files: { regular: 'DejaVuSans.ttf', bold: 'DejaVuSans-Bold.ttf' }, dirs: [FONTS_DIR] };

export const NANUM_GOTHIC: FontFamilySource = {
  name: 'NanumGothic',
  files: { regular: 'NanumGothic.ttf', bold: 'NanumGothicBold.ttf' },
  // Debian and Ubuntu (fonts-nanum), Fedora (naver-nanum-gothic-fonts), a manual install.
  dirs: ['/usr/share/fonts/truetype/nanum', '/usr/share/fonts/naver-nanum', '/usr/share/fonts/nanum', '/usr/local/share/fonts/nanum', '/usr/local/share/fonts'],
  debianPackage: 'fonts-nanum',
};

export interface ReportFontOptions {
  /** A language's own family by its code; a language not listed writes in `defaultFamily`. */
  languageFamilies: Readonly<Record<string, FontFamilySource>>;
  defaultFamily: FontFamilySource;
  /** Tried in order for a text the language's own family cannot draw; one not installed is skipped. */
  fallbacks: readonly FontFamilySource[];
}

export const DEFAULT_REPORT_FONT_OPTIONS: Readonly<ReportFontOptions> = Object.freeze({
  languageFamilies: { ko: NANUM_GOTHIC },
  defaultFamily: DEJAVU_SANS,
  fallbacks: [DEJAVU_SANS, NANUM_GOTHIC],
});

/** The fonts of one document. */
export interface ReportFonts {
  /** The language's own faces, as registered: the document's default font and the charts' font. */
  regular: string;
  bold: string;
  /** The file of the language's regular face (PDFDocument's `font` option: the first font it opens). */
  regularFile: string;
  /** The registered name of the face to draw `text` in, whole: the first family with every glyph of it, else the one that misses fewest. */
  fontFor(text: string, bold?: boolean): string;
  /**
   * `text` cut where it changes script, each run with a face that has its glyphs: for a line
   * that joins a name from the pilot file to the language's words ("Өлшегіш 3 · 시험 대상").
   */
  runs(text: string, bold?: boolean): TextRun[];
  /** The characters of `text` that face has no glyph for (none, unless no family has them). */
  missingGlyphs(text: string, bold?: boolean): string[];
  /** Registers every face with the document; pdfkit embeds only those a page draws with. */
  registerWith(doc: PDFKit.PDFDocument): void;
}

export interface TextRun {
  text: string;
  /** The registered name of its face. */
  font: string;
}

interface Face {
  name: string;
  file: string;
  bytes: Buffer;
  font: Font;
}

/** Parsed once per process: a family that is installed later is found on the next report. */
const loaded = new Map<string, { bytes: Buffer; font: Font }>();

function loadFace(file: string, name: string): Face {
  let entry = loaded.get(file);
  if (!entry) {
    const bytes = readFileSync(file);
    const font = create(bytes);
    if (!('hasGlyphForCodePoint' in font)) throw new Error(`${file} is a font collection; the report needs a single TrueType font`);
    entry = { bytes, font };
    loaded.set(file, entry);
  }
  return { name, file, ...entry };
}

/** Both faces of a family from the first folder that has them, or null. */
function findFamily(source: FontFamilySource): { regular: Face; bold: Face } | null {
  for (const dir of source.dirs) {
    const regular = join(dir, source.files.regular);
    const bold = join(dir, source.files.bold);
    if (existsSync(regular) && existsSync(bold)) return { regular: loadFace(regular, source.name), bold: loadFace(bold, `${source.name}-Bold`) };
  }
  return null;
}

const SCRIPTS = [/\p{Script=Hangul}/u, /\p{Script=Han}/u, /\p{Script=Cyrillic}/u, /\p{Script=Latin}/u, /\p{Script=Greek}/u];

/** `text` cut where its letters change script; what is not a letter stays with the letters before it. */
function scriptSegments(text: string): string[] {
  const segments: string[] = [];
  let current = '';
  let script = -1;
  for (const char of text) {
    const letter = /[\p{L}\p{M}]/u.test(char);
    const index = letter ? SCRIPTS.findIndex((re) => re.test(char)) : -1;
    // Letters of a script not listed here count as one more script.
    const next = letter ? (index === -1 ? SCRIPTS.length : index) : script;
    if (letter && next !== script && current !== '' && script !== -1) {
      segments.push(current);
      current = '';
    }
    if (letter) script = next;
    current += char;
  }
  if (current !== '') segments.push(current);
  return segments;
}

/** Line breaks and soft hyphens are never drawn as glyphs. */
const NOT_DRAWN = /[\r\n\t\u00ad]/;

function missingIn(face: Face, text: string): string[] {
  const missing = new Set<string>();
  for (const char of text) {
    if (!NOT_DRAWN.test(char) && !face.font.hasGlyphForCodePoint(char.codePointAt(0) as number)) missing.add(char);
  }
  return [...missing];
}

/**
 * The fonts of a report in `languageCode`: its own family (an error that names the package to
 * install when it is missing), then the installed fallbacks.
 */
export function resolveReportFonts(languageCode: string, options: Partial<ReportFontOptions> = {}): ReportFonts {
  const { languageFamilies, defaultFamily, fallbacks } = { ...DEFAULT_REPORT_FONT_OPTIONS, ...options };
  const ownSource = languageFamilies[languageCode] ?? defaultFamily;
  const own = findFamily(ownSource);
  if (!own) {
    const install = ownSource.debianPackage ? `: install Debian's ${ownSource.debianPackage} package (apt-get install ${ownSource.debianPackage})` : '';
    throw new FlowPilotError('ERR_REPORT_FONT', `The report in "${languageCode}" needs the ${ownSource.name} font, found in none of ${ownSource.dirs.join(', ')}${install}`);
  }
  const families = [own];
  for (const source of fallbacks) {
    if (source.name === ownSource.name) continue;
    const family = findFamily(source);
    if (family) families.push(family);
  }

  const chosen = new Map<string, Face>();
  const faceFor = (text: string, bold: boolean): Face => {
    const key = `${bold ? 'b' : 'r'}${text}`;
    let face = chosen.get(key);
    if (!face) {
      // The first family with every glyph; when none has them all, the one that misses fewest.
      let best: { face: Face; missing: number } | undefined;
      for (const family of families) {
        const candidate = bold ? family.bold : family.regular;
        const missing = missingIn(candidate, text).length;
        if (!best || missing < best.missing) best = { face: candidate, missing };
        if (missing === 0) break;
      }
      face = (best as { face: Face }).face;
      chosen.set(key, face);
    }
    return face;
  };

  const runs = (text: string, bold: boolean): TextRun[] => {
    const whole = faceFor(text, bold);
    if (missingIn(whole, text).length === 0) return [{ text, font: whole.name }];
    const faces = families.map((family) => (bold ? family.bold : family.regular));
    const has = (face: Face, char: string): boolean => NOT_DRAWN.test(char) || face.font.hasGlyphForCodePoint(char.codePointAt(0) as number);
    // A stretch of one script (with the spaces, digits and punctuation after it) in the first face
    // that has all of it, so that a word, or a name, never mixes two designs; a character that
    // face lacks (a minus sign) in the first that has it.
    const result: { text: string; face: Face }[] = [];
    for (const segment of scriptSegments(text)) {
      const face = faces.find((candidate) => [...segment].every((char) => has(candidate, char))) ?? faceFor(segment, bold);
      for (const char of segment) {
        const drawn = has(face, char) ? face : (faces.find((candidate) => has(candidate, char)) ?? face);
        const last = result.at(-1);
        if (last && last.face === drawn) last.text += char;
        else result.push({ text: char, face: drawn });
      }
    }
    return result.map((run) => ({ text: run.text, font: run.face.name }));
  };

  return {
    regular: own.regular.name,
    bold: own.bold.name,
    regularFile: own.regular.file,
    fontFor: (text, bold = false) => faceFor(text, bold).name,
    runs: (text, bold = false) => runs(text, bold),
    missingGlyphs: (text, bold = false) => missingIn(faceFor(text, bold), text),
    registerWith(doc) {
      for (const family of families) for (const face of [family.regular, family.bold]) doc.registerFont(face.name, face.bytes);
    },
  };
}
