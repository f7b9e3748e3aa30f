// fontkit (pdfkit's font engine) ships no types; these are the calls the report makes.
declare module 'fontkit' {
  interface Font {
    postscriptName: string;
    hasGlyphForCodePoint(codePoint: number): boolean;
  }
  interface FontCollection {
    fonts: Font[];
  }
  /** Parses a font file: a collection (.ttc, .dfont) unless `postscriptName` picks one of its fonts. */
  function create(buffer: Uint8Array, postscriptName?: string): Font | FontCollection;
  export { create };
  export type { Font, FontCollection };
}
