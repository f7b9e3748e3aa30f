// Resolved at bundle time by dashboard-bundle.ts from packages/i18n/strings/*.json: adding a
// language is adding a file there.
declare module 'flowpilot:strings' {
  const languages: ReadonlyArray<{ code: string; strings: Readonly<Record<string, string>> }>;
  export default languages;
}
