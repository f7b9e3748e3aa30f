import { formatUtcOffset } from '@flowpilot/i18n/format';
import { alertsView, createAlertsBanner, createAlertsFeed } from './alerts.ts';
import { LANGUAGES, chosenLanguage, makeContext, rememberLanguage } from './context.ts';
import type { Context, PilotView, View } from './context.ts';
import { ApiError, getJson, h } from './dom.ts';
import { liveView } from './live.ts';
import { meterView } from './meter.ts';
import { reportsView } from './reports.ts';
import { resultsView } from './results.ts';

/**
 * The dashboard (SPEC section 5, served at `/`): hash routes #/live, #/meter/{id}, #/results,
 * #/reports and #/alerts over the JSON API and the SSE feed, under the banner of firing alerts
 * (SPEC section 9). Bundled by dashboard-bundle.ts with esbuild.
 */
const ROUTES: Record<string, View> = { live: liveView, meter: meterView, results: resultsView, reports: reportsView, alerts: alertsView };

const main = document.getElementById('view') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const errorBox = document.getElementById('error') as HTMLElement;
let teardown: (() => void) | void;
let ctx: Context;
/** The firing alerts, polled for the whole page's life: the banner and the views share them. */
const alerts = createAlertsFeed();
const banner = createAlertsBanner(document.getElementById('alerts-banner') as HTMLElement, alerts);

/** GET /api/v1/session: who is signed in (SPEC section 8); null when the API could not say. */
interface Session {
  name: string | null;
  role: 'viewer' | 'evaluator' | 'admin';
  via: 'bearer' | 'cookie' | 'loopback';
}
let session: Session | null = null;
/** The views each role may open: results and reports read evaluator routes. */
const NEEDS_EVALUATOR = new Set(['results', 'reports']);

async function signOut(): Promise<void> {
  await fetch('/api/v1/session', { method: 'DELETE' }).catch(() => undefined);
  // The dashboard's page now answers with the sign-in page.
  location.assign('/');
}

function route(): { name: string; param: string | undefined } {
  const path = location.hash.replace(/^#\/?/, '').split('?')[0] ?? '';
  const [name = 'live', param] = path.split('/');
  return { name: ROUTES[name] ? name : 'live', param: param === undefined ? undefined : decodeURIComponent(param) };
}

function paintChrome(): void {
  const { t } = ctx;
  document.documentElement.lang = ctx.language.code;
  document.title = `${ctx.pilot.name} · FlowPilot`;
  (document.getElementById('pilot-name') as HTMLElement).textContent = ctx.pilot.name;
  const current = route().name === 'meter' ? 'live' : route().name;
  const select = h('select', { id: 'lang', 'aria-label': t('nav.language'), 'data-testid': 'language' }, ...LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === ctx.language.code }, l.name)));
  select.addEventListener('change', () => {
    const language = LANGUAGES.find((l) => l.code === select.value);
    if (!language) return;
    rememberLanguage(language.code);
    ctx = makeContext(ctx.pilot, language, alerts);
    render(true);
  });
  // Alerts: unless the API says this role may not read them, that it evaluates none, or has no such route.
  const alertsReadable = !['forbidden', 'disabled', 'missing'].includes(alerts.status());
  const views = (['live', 'results', 'reports', 'alerts'] as const).filter((name) => (session?.role !== 'viewer' || !NEEDS_EVALUATOR.has(name)) && (name !== 'alerts' || alertsReadable || current === 'alerts'));
  const signOutButton = session?.via === 'cookie' ? h('button', { type: 'button', class: 'link', 'data-testid': 'sign-out' }, t('nav.signOut')) : null;
  signOutButton?.addEventListener('click', () => void signOut());
  nav.replaceChildren(
    ...views.map((name) => h('a', { href: `#/${name}`, class: name === current ? 'current' : undefined, 'data-nav': name }, t(`nav.${name}`))),
    h('a', { href: '/docs' }, t('nav.apiDocs')),
    select,
    ...(signOutButton ? [signOutButton] : []),
  );
  const who = document.getElementById('who');
  if (who) who.textContent = session?.name ? t('nav.signedInAs', { name: session.name, role: t(`access.${session.role}`) }) : '';
  (document.getElementById('tz') as HTMLElement).textContent = t('app.timesIn', { zone: ctx.tz, offset: formatUtcOffset(ctx.tz, Date.now()) });
}

/** `quiet`: a new language repaints the banner without announcing its alerts again. */
function render(quiet = false): void {
  if (teardown) teardown();
  // The feed indicator belongs to the views with a live stream; they set it again.
  const feed = document.getElementById('feed') as HTMLElement;
  feed.textContent = '';
  feed.className = '';
  paintChrome();
  banner.paint(ctx, quiet);
  main.replaceChildren();
  const { name, param } = route();
  teardown = (ROUTES[name] as View)(main, ctx, param);
}

async function start(): Promise<void> {
  const language = chosenLanguage();
  try {
    const [pilot, who] = await Promise.all([getJson<PilotView>('/api/v1/pilot'), getJson<Session>('/api/v1/session').catch(() => null)]);
    session = who;
    ctx = makeContext(pilot, language, alerts);
  } catch (error) {
    // Signed out meanwhile (the token was revoked): the page itself now answers with the sign-in form.
    if (error instanceof ApiError && error.status === 401) {
      location.reload();
      return;
    }
    errorBox.textContent = `FlowPilot: ${(error as Error).message}`;
    errorBox.hidden = false;
    return;
  }
  window.addEventListener('hashchange', () => render());
  // The nav shows the Alerts page once the API answered that the role may read alerts.
  let readable = alerts.status();
  alerts.subscribe(() => {
    if (alerts.status() === readable) return;
    readable = alerts.status();
    paintChrome();
  });
  render();
}

void start();
