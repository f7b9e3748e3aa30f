import { formatUtcOffset } from '@flowpilot/i18n/format';
import { LANGUAGES, chosenLanguage, makeContext, rememberLanguage } from './context.ts';
import type { Context, PilotView, View } from './context.ts';
import { getJson, h } from './dom.ts';
import { liveView } from './live.ts';
import { meterView } from './meter.ts';
import { reportsView } from './reports.ts';
import { resultsView } from './results.ts';

/**
 * The dashboard (SPEC section 5, served at `/`): hash routes #/live, #/meter/{id}, #/results and
 * #/reports over the JSON API and the SSE feed. Bundled by dashboard-bundle.ts with esbuild.
 */
const ROUTES: Record<string, View> = { live: liveView, meter: meterView, results: resultsView, reports: reportsView };

const main = document.getElementById('view') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const errorBox = document.getElementById('error') as HTMLElement;
let teardown: (() => void) | void;
let ctx: Context;

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
    ctx = makeContext(ctx.pilot, language);
    render();
  });
  nav.replaceChildren(
    ...(['live', 'results', 'reports'] as const).map((name) => h('a', { href: `#/${name}`, class: name === current ? 'current' : undefined, 'data-nav': name }, t(`nav.${name}`))),
    h('a', { href: '/docs' }, t('nav.apiDocs')),
    select,
  );
  (document.getElementById('tz') as HTMLElement).textContent = t('app.timesIn', { zone: ctx.tz, offset: formatUtcOffset(ctx.tz, Date.now()) });
}

function render(): void {
  if (teardown) teardown();
  // The feed indicator belongs to the views with a live stream; they set it again.
  const feed = document.getElementById('feed') as HTMLElement;
  feed.textContent = '';
  feed.className = '';
  paintChrome();
  main.replaceChildren();
  const { name, param } = route();
  teardown = (ROUTES[name] as View)(main, ctx, param);
}

async function start(): Promise<void> {
  const language = chosenLanguage();
  try {
    const pilot = await getJson<PilotView>('/api/v1/pilot');
    ctx = makeContext(pilot, language);
  } catch (error) {
    errorBox.textContent = `FlowPilot: ${(error as Error).message}`;
    errorBox.hidden = false;
    return;
  }
  window.addEventListener('hashchange', render);
  render();
}

void start();
