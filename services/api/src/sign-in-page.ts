import { createTranslator, loadLanguages, pickLanguage } from '@flowpilot/i18n';
import type { Language } from '@flowpilot/i18n';

/**
 * The dashboard's sign-in page, rendered on the server: a plain form that posts the token to
 * /api/v1/session, so it works without script (and under a strict CSP). An error is tied to the
 * field (aria-describedby, aria-invalid) and the field takes focus, so a screen reader reads
 * label and error together; the error also leads the title, which is read first on load.
 */
export type SignInProblem = 'missing' | 'failed' | 'empty';

export interface SignInPageRenderer {
  render(options: { lang?: string | undefined; acceptLanguage?: string | undefined; next: string; problem: SignInProblem }): { html: string; lang: string };
}

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** `/docs` stays `/docs`; anything that could leave this site (`//evil`, `/\evil`, a scheme) becomes `/`. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\r\n\t]/.test(next) || next.length > 2000) return '/';
  return next;
}

/** Accept-Language as the ordered list of tags the browser prefers. */
export function acceptedLanguages(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(',')
    .map((part) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = Number(params.find((p) => p.trim().startsWith('q='))?.trim().slice(2) ?? '1');
      return { tag: tag.trim(), q: Number.isFinite(q) ? q : 0 };
    })
    .filter((entry) => entry.tag && entry.tag !== '*' && entry.q > 0)
    .sort((a, b) => b.q - a.q)
    .map((entry) => entry.tag);
}

export function createSignInPageRenderer(languages: readonly Language[] = loadLanguages()): SignInPageRenderer {
  const base = languages.find((l) => l.code === 'en') ?? (languages[0] as Language);
  const codes = languages.map((l) => l.code);
  return {
    render({ lang, acceptLanguage, next, problem }) {
      const code = pickLanguage(codes, lang ?? null, acceptedLanguages(acceptLanguage));
      const language = languages.find((l) => l.code === code) ?? base;
      const t = createTranslator(language, base);
      const target = safeNext(next);
      const error = problem === 'missing' ? null : t(problem === 'failed' ? 'signin.failed' : 'signin.empty');
      const describedBy = error ? 'token-error token-hint' : 'token-hint';
      const switcher = languages
        .map((l) =>
          l.code === language.code
            ? `<span aria-current="true">${escapeHtml(l.name)}</span>`
            : `<a href="?lang=${encodeURIComponent(l.code)}" hreflang="${escapeHtml(l.code)}" lang="${escapeHtml(l.code)}">${escapeHtml(l.name)}</a>`,
        )
        .join(' ');
      const html = `<!doctype html>
<html lang="${escapeHtml(language.code)}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <title>${error ? `${escapeHtml(t('signin.errorTitle'))}: ` : ''}${escapeHtml(t('signin.title'))} · FlowPilot</title>
  <link rel="icon" href="/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/dashboard.css">
</head>
<body>
  <header>
    <h1>FlowPilot</h1>
    <nav aria-label="${escapeHtml(t('nav.language'))}">${switcher}</nav>
  </header>
  <main class="signin">
    <h2>${escapeHtml(t('signin.title'))}</h2>
    <p>${escapeHtml(t('signin.intro'))}</p>
    <form method="post" action="/api/v1/session" class="signin-form" data-testid="signin-form">
      <input type="hidden" name="next" value="${escapeHtml(target)}">
      <input type="hidden" name="lang" value="${escapeHtml(language.code)}">
      <label for="token">${escapeHtml(t('signin.token'))}</label>
      ${error ? `<p id="token-error" class="error" role="alert">${escapeHtml(error)}</p>` : ''}
      <input id="token" name="token" type="password" required autofocus autocomplete="current-password" autocapitalize="off" spellcheck="false" aria-describedby="${describedBy}"${error ? ' aria-invalid="true"' : ''}>
      <p id="token-hint" class="note">${escapeHtml(t('signin.hint'))}</p>
      <button type="submit">${escapeHtml(t('signin.submit'))}</button>
    </form>
  </main>
</body>
</html>
`;
      return { html, lang: language.code };
    },
  };
}
