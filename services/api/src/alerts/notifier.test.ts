import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadLanguages } from '@flowpilot/i18n';
import type { NotifyConfig } from '@flowpilot/schema';
import { createNotificationRenderer, formatZonedTime } from './notification-text.ts';
import { createNotifier, DEFAULT_NOTIFY_BACKOFF, notifyBackoffMs, renderNotificationMetrics, signWebhookBody } from './notifier.ts';
import type { MailTransport, Notifier, NotifierLog, NotifierOptions } from './notifier.ts';
import { ALERT_RULES } from './types.ts';
import type { Alert, AlertTransition } from './types.ts';

const PILOT = { id: 'almaty-2026', name: 'Almaty water utility', timezone: 'Asia/Almaty', language: 'en' };
const METERS = [{ id: 'ALM-PS3-DUT1', label: 'Pump station 3 outlet, meter under test', site: 'PS3' }];

function alert(overrides: Partial<Alert> = {}): Alert {
  return {
    id: 'alert-1',
    rule: 'leak',
    meterId: 'ALM-PS3-DUT1',
    state: 'firing',
    since: '2026-11-24T22:12:00.000Z',
    until: null,
    message: 'Night minimum flow 0.8 m³/h above leakM3h 0.5',
    details: { threshold: 0.5, value: 0.8 },
    ...overrides,
  };
}

function fired(id: string): AlertTransition {
  return { kind: 'fired', alert: alert({ id }) };
}

function resolved(id: string): AlertTransition {
  return { kind: 'resolved', alert: alert({ id, state: 'resolved', until: '2026-11-25T00:17:30.000Z' }) };
}

interface RecordedLog extends NotifierLog {
  entries: { level: string; obj: Record<string, unknown>; msg: string }[];
}

function recordingLog(): RecordedLog {
  const entries: RecordedLog['entries'] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => void entries.push({ level, obj, msg });
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as unknown as RecordedLog;
}

interface Request {
  url: string;
  headers: Record<string, string>;
  body: Buffer;
  json: { event: string; alert: Alert; pilot: { id: string; name: string }; sentAt: string };
}

/** A fetch whose answers the test decides: a status, or an error (the receiver is down). */
function fakeFetch(answer: (request: Request, n: number) => number | Error | Response) {
  const requests: Request[] = [];
  const impl = async (input: string | URL | globalThis.Request, init?: RequestInit): Promise<Response> => {
    const body = Buffer.from(init?.body as Uint8Array);
    const request: Request = { url: String(input), headers: init?.headers as Record<string, string>, body, json: JSON.parse(body.toString('utf8')) as Request['json'] };
    requests.push(request);
    const result = answer(request, requests.length);
    if (result instanceof Error) throw result;
    return result instanceof Response ? result : new Response(null, { status: result });
  };
  return { requests, fetch: impl as typeof fetch };
}

const refused = (): Error => new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });

let notifiers: Notifier[] = [];

function notifier(options: Partial<NotifierOptions> & { notify: NotifyConfig }): Notifier {
  const created = createNotifier({ pilot: PILOT, meters: METERS, dataDir: null, log: recordingLog(), backoff: { initialMs: 1000, maxMs: 8000, factor: 2, jitter: 0 }, ...options });
  notifiers.push(created);
  return created;
}

beforeEach(() => {
  vi.useFakeTimers({ now: Date.parse('2026-11-25T00:30:00Z') });
});

afterEach(async () => {
  for (const created of notifiers) await created.close();
  notifiers = [];
  vi.useRealTimers();
});

describe('webhook signature', () => {
  it('is HMAC-SHA256 of the body bytes, hex, after "sha256=" (RFC 4231 test case 2)', () => {
    expect(signWebhookBody('what do ya want for nothing?', 'Jefe')).toBe('sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    expect(signWebhookBody(Buffer.from('what do ya want for nothing?'), 'Jefe')).toBe('sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  it('signs exactly the bytes it posts, with the documented headers and body', async () => {
    const { requests, fetch } = fakeFetch(() => 204);
    const n = notifier({ notify: { webhooks: [{ url: 'https://hooks.example.org/flowpilot', secret: 's3cret' }, { url: 'https://other.example.org/in' }] }, fetch });
    n.notify(fired('alert-1'));
    await vi.advanceTimersByTimeAsync(0);
    await n.flush();
    expect(requests).toHaveLength(2);
    const [signed, unsigned] = requests as [Request, Request];
    expect(signed.headers['content-type']).toBe('application/json');
    expect(signed.headers['x-flowpilot-signature']).toBe(signWebhookBody(signed.body, 's3cret'));
    expect(signed.headers['x-flowpilot-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(signed.headers['x-flowpilot-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(signed.json).toEqual({ event: 'fired', alert: alert(), pilot: { id: PILOT.id, name: PILOT.name }, sentAt: '2026-11-25T00:30:00.000Z' });
    expect(unsigned.headers['x-flowpilot-signature']).toBeUndefined();
    // Each destination's row has its own delivery id.
    expect(unsigned.headers['x-flowpilot-delivery']).not.toBe(signed.headers['x-flowpilot-delivery']);
    expect(n.stats()).toEqual({ sent: { webhook: 2, email: 0 }, failed: { webhook: 0, email: 0 }, pending: { webhook: 0, email: 0 }, orphaned: 0 });
  });
});

describe('backoff', () => {
  it('doubles from 1 s to a 5 min cap, jittered within ±20 %', () => {
    const exact = { ...DEFAULT_NOTIFY_BACKOFF, jitter: 0 };
    expect([1, 2, 3, 4, 9, 10, 50].map((attempt) => notifyBackoffMs(attempt, exact))).toEqual([1000, 2000, 4000, 8000, 256_000, 300_000, 300_000]);
    expect(notifyBackoffMs(3, DEFAULT_NOTIFY_BACKOFF, () => 0)).toBe(3200);
    expect(notifyBackoffMs(3, DEFAULT_NOTIFY_BACKOFF, () => 1)).toBe(4800);
    expect(notifyBackoffMs(20, DEFAULT_NOTIFY_BACKOFF, () => 1)).toBe(300_000);
  });

  it('retries a receiver that is down on the fake clock, then delivers once', async () => {
    const log = recordingLog();
    const { requests, fetch } = fakeFetch((_request, n) => (n <= 3 ? refused() : 200));
    const n = notifier({ notify: { webhooks: [{ url: 'https://hooks.example.org/x' }] }, fetch, log });
    n.notify(fired('alert-1'));
    await vi.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(requests).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(2000);
    expect(requests).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(3999);
    expect(requests).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(requests).toHaveLength(4);
    await n.flush();
    expect(new Set(requests.map((request) => request.headers['x-flowpilot-delivery'])).size).toBe(1);
    expect(n.stats().sent.webhook).toBe(1);
    expect(n.stats().failed.webhook).toBe(3);
    expect(log.entries.filter((entry) => entry.level === 'warn').map((entry) => [entry.obj.attempt, entry.obj.retryInMs, entry.obj.error])).toEqual([
      [1, 1000, 'fetch failed (ECONNREFUSED)'],
      [2, 2000, 'fetch failed (ECONNREFUSED)'],
      [3, 4000, 'fetch failed (ECONNREFUSED)'],
    ]);
    expect(log.entries.filter((entry) => entry.msg === 'alert notification delivered')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(requests).toHaveLength(4);
  });

  it('retries a 4xx at the capped pace and says so loudly; honours Retry-After of a 429', async () => {
    const log = recordingLog();
    const statuses = [400, 400, 429, 200];
    const { requests, fetch } = fakeFetch((_request, n) => (statuses[n - 1] === 429 ? new Response(null, { status: 429, headers: { 'retry-after': '6' } }) : (statuses[n - 1] ?? 200)));
    const n = notifier({ notify: { webhooks: [{ url: 'https://hooks.example.org/x' }] }, fetch, log });
    n.notify(fired('alert-1'));
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(7999);
    expect(requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(requests).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(8000);
    expect(requests).toHaveLength(3);
    // Attempt 3's own backoff is 4 s; the receiver asked for 6.
    await vi.advanceTimersByTimeAsync(5999);
    expect(requests).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    await n.flush();
    expect(requests).toHaveLength(4);
    const errors = log.entries.filter((entry) => entry.level === 'error');
    expect(errors).toHaveLength(2);
    expect(errors[0]?.obj.error).toMatch(/^HTTP 400: the receiver refuses/);
    expect(log.entries.find((entry) => entry.level === 'warn')?.obj).toMatchObject({ error: 'HTTP 429', retryInMs: 6000 });
  });

  it('does not follow a redirect with the signed body', async () => {
    const log = recordingLog();
    const { fetch } = fakeFetch((_request, n) => (n === 1 ? new Response(null, { status: 302, headers: { location: 'https://elsewhere.example.org/' } }) : 200));
    const n = notifier({ notify: { webhooks: [{ url: 'https://hooks.example.org/x', secret: 'k' }] }, fetch, log });
    n.notify(fired('alert-1'));
    await vi.advanceTimersByTimeAsync(0);
    expect(log.entries.find((entry) => entry.level === 'error')?.obj.error).toMatch(/^HTTP 302: the receiver redirects/);
  });

  it('never names a webhook by its full URL in the log (its path is often its secret)', async () => {
    const log = recordingLog();
    const { fetch } = fakeFetch(() => refused());
    const n = notifier({ notify: { webhooks: [{ url: 'https://hooks.example.org/T000/B000/XXXXsecret' }] }, fetch, log });
    n.notify(fired('alert-1'));
    await vi.advanceTimersByTimeAsync(0);
    expect(JSON.stringify(log.entries)).not.toContain('XXXXsecret');
    expect(log.entries.find((entry) => entry.level === 'warn')?.obj.destination).toBe('webhook 1 (https://hooks.example.org)');
  });
});

describe('order', () => {
  it('holds a destination\'s later notifications behind the one it retries, and lets other destinations go on', async () => {
    let downUntil = 4;
    const { requests, fetch } = fakeFetch((request, n) => (request.url.includes('down') && n <= downUntil ? refused() : 200));
    const n = notifier({ notify: { webhooks: [{ url: 'https://down.example.org/' }, { url: 'https://up.example.org/' }] }, fetch });
    n.notify(fired('a'));
    n.notify(fired('b'));
    await vi.advanceTimersByTimeAsync(0);
    n.notify(resolved('a'));
    n.notify(resolved('b'));
    await vi.advanceTimersByTimeAsync(0);
    const seen = (host: string): string[] =>
      requests.filter((request) => request.url.includes(host) && request.headers['x-flowpilot-delivery']).map((request) => `${request.json.event} ${request.json.alert.id}`);
    expect(seen('up')).toEqual(['fired a', 'fired b', 'resolved a', 'resolved b']);
    expect(n.stats().pending).toEqual({ webhook: 4, email: 0 });
    downUntil = 0;
    await vi.advanceTimersByTimeAsync(1000);
    await n.flush();
    const down = requests.filter((request) => request.url.includes('down'));
    const delivered = [...new Map(down.map((request) => [request.headers['x-flowpilot-delivery'], `${request.json.event} ${request.json.alert.id}`])).values()];
    expect(delivered).toEqual(['fired a', 'fired b', 'resolved a', 'resolved b']);
    expect(n.stats().pending).toEqual({ webhook: 0, email: 0 });
  });
});

describe('e-mail', () => {
  function fakeTransport(answer: (n: number) => Error | { accepted: string[]; rejected: string[] } = () => ({ accepted: ['ops@example.org'], rejected: [] })) {
    const mails: Parameters<MailTransport['sendMail']>[0][] = [];
    const transport: MailTransport = {
      sendMail: async (mail) => {
        mails.push(mail);
        const result = answer(mails.length);
        if (result instanceof Error) throw result;
        return { ...result, response: '250 OK' };
      },
    };
    return { mails, transport };
  }

  const EMAIL: NotifyConfig = { email: { smtp: { host: 'smtp.example.org', port: 587 }, from: 'flowpilot@example.org', to: ['ops@example.org', 'field@example.org'] } };

  it('sends one mail per transition, threaded, with the delivery id', async () => {
    const { mails, transport } = fakeTransport();
    const n = notifier({ notify: EMAIL, transport });
    n.notify(fired('alert-7'));
    n.notify(resolved('alert-7'));
    await n.flush();
    expect(mails).toHaveLength(2);
    const [fire, resolve] = mails as [Parameters<MailTransport['sendMail']>[0], Parameters<MailTransport['sendMail']>[0]];
    expect(fire).toMatchObject({ from: 'flowpilot@example.org', to: ['ops@example.org', 'field@example.org'], subject: '[FlowPilot almaty-2026] Alert: Possible leak — ALM-PS3-DUT1' });
    expect(fire.messageId).toBe('<alert-7.fired.almaty-2026@flowpilot>');
    expect(resolve.inReplyTo).toBe(fire.messageId);
    expect(resolve.subject).toBe('[FlowPilot almaty-2026] Resolved: Possible leak — ALM-PS3-DUT1');
    expect((fire.headers as Record<string, string>)['X-FlowPilot-Delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(fire.html).toContain('<h2');
    expect(n.stats().sent.email).toBe(2);
  });

  it('treats a refused login as an operator\'s problem (capped pace), a dropped connection as a retry', async () => {
    const log = recordingLog();
    const failures = [Object.assign(new Error('Invalid login: 535 Authentication failed'), { code: 'EAUTH', responseCode: 535 }), Object.assign(new Error('Connection closed'), { code: 'ECONNECTION' })];
    const { mails, transport } = fakeTransport((k) => failures[k - 1] ?? { accepted: ['ops@example.org'], rejected: ['field@example.org'] });
    const n = notifier({ notify: EMAIL, transport, log });
    n.notify(fired('alert-1'));
    await vi.advanceTimersByTimeAsync(0);
    expect(log.entries.find((entry) => entry.level === 'error')?.obj.retryInMs).toBe(8000);
    await vi.advanceTimersByTimeAsync(8000);
    expect(log.entries.find((entry) => entry.level === 'warn')?.obj.retryInMs).toBe(2000);
    await vi.advanceTimersByTimeAsync(2000);
    await n.flush();
    expect(mails).toHaveLength(3);
    // Accepted for some recipients: sending again would repeat it to them.
    expect(log.entries.find((entry) => entry.msg === 'alert notification delivered')?.obj.result).toBe('refused for field@example.org');
    expect(n.stats().failed.email).toBe(2);
  });
});

describe('the sink', () => {
  it('never throws, even after close', async () => {
    const log = recordingLog();
    const n = notifier({ notify: { webhooks: [{ url: 'https://hooks.example.org/' }] }, fetch: fakeFetch(() => 200).fetch, log });
    await n.close();
    expect(() => n.notify(fired('late'))).not.toThrow();
    expect(log.entries.some((entry) => entry.level === 'error' && entry.msg.includes('after the notifier was closed'))).toBe(true);
    await expect(n.flush()).resolves.toBeUndefined();
  });

  it('does nothing without destinations', async () => {
    const n = notifier({ notify: {} });
    n.notify(fired('a'));
    await n.flush();
    expect(n.stats().pending).toEqual({ webhook: 0, email: 0 });
  });

  it('renders its counters for Prometheus', () => {
    const text = renderNotificationMetrics({ sent: { webhook: 3, email: 1 }, failed: { webhook: 2, email: 0 }, pending: { webhook: 1, email: 0 }, orphaned: 0 });
    expect(text).toContain('# TYPE flowpilot_notifications_sent_total counter\n');
    expect(text).toContain('flowpilot_notifications_sent_total{channel="webhook"} 3\n');
    expect(text).toContain('flowpilot_notifications_failed_total{channel="webhook"} 2\n');
    expect(text).toContain('# TYPE flowpilot_notifications_pending gauge\n');
    expect(text).toContain('flowpilot_notifications_pending{channel="email"} 0\n');
  });
});

describe('texts', () => {
  it('formats a moment in the pilot\'s zone with the zone and its offset named', () => {
    expect(formatZonedTime(Date.parse('2026-11-24T22:12:00Z'), 'Asia/Almaty')).toBe('2026-11-25 03:12 (Asia/Almaty, UTC+05:00)');
    // Summer and winter time of one zone.
    expect(formatZonedTime(Date.parse('2026-07-01T12:00:00Z'), 'Europe/Berlin')).toBe('2026-07-01 14:00 (Europe/Berlin, UTC+02:00)');
    expect(formatZonedTime(Date.parse('2026-01-01T00:30:00Z'), 'Europe/Berlin')).toBe('2026-01-01 01:30 (Europe/Berlin, UTC+01:00)');
    expect(formatZonedTime(Date.parse('2026-01-01T00:30:00Z'), 'UTC')).toBe('2026-01-01 00:30 (UTC, UTC+00:00)');
  });

  it('writes English with local times, the meter\'s label and site, and what to do', () => {
    const render = createNotificationRenderer({ pilot: PILOT, meters: METERS });
    const fire = render(fired('alert-1'));
    expect(fire.subject).toBe('[FlowPilot almaty-2026] Alert: Possible leak — ALM-PS3-DUT1');
    expect(fire.text).toContain('Meter: ALM-PS3-DUT1 — Pump station 3 outlet, meter under test, site PS3');
    expect(fire.text).toContain('Since: 2026-11-25 03:12 (Asia/Almaty, UTC+05:00)');
    expect(fire.text).toContain('Details: threshold: 0.5 m³/h; value: 0.8 m³/h');
    expect(fire.text).toContain('What to do:\nCompare with the previous nights');
    const resolve = render(resolved('alert-1'));
    expect(resolve.text).toContain('Resolved at: 2026-11-25 05:17 (Asia/Almaty, UTC+05:00)');
    expect(resolve.text).toContain('Lasted: 2 h 06 min');
    expect(resolve.text).toContain('What changed:\nThe night flow is back below the threshold.');
    expect(resolve.text).not.toContain('What to do');
  });

  it('writes Russian, with the same times and Russian decimals', () => {
    const render = createNotificationRenderer({ pilot: { ...PILOT, language: 'ru' }, meters: METERS });
    const fire = render(fired('alert-1'));
    expect(fire.subject).toBe('[FlowPilot almaty-2026] Проблема: Возможная утечка — ALM-PS3-DUT1');
    expect(fire.text).toContain('Счётчик: ALM-PS3-DUT1 — Pump station 3 outlet, meter under test, площадка PS3');
    expect(fire.text).toContain('Началось: 2026-11-25 03:12 (Asia/Almaty, UTC+05:00)');
    expect(fire.text).toContain('Подробности: порог: 0,5 м³/ч; значение: 0,8 м³/ч');
    expect(fire.text).toContain('Что делать:\n');
    const resolve = render({ kind: 'resolved', alert: alert({ rule: 'influx_down', meterId: null, details: {}, until: '2026-11-25T00:17:30Z' }) });
    expect(resolve.subject).toBe('[FlowPilot almaty-2026] Решено: База данных недоступна — вся система');
    expect(resolve.text).toContain('Закончилось: 2026-11-25 05:17 (Asia/Almaty, UTC+05:00)');
    expect(resolve.text).toContain('Затрагивает: вся система сбора данных, а не отдельный счётчик');
  });

  it('writes Kazakh and Korean (issue 14), with each locale\'s decimals', () => {
    const kk = createNotificationRenderer({ pilot: { ...PILOT, language: 'kk' }, meters: METERS })(fired('alert-1'));
    expect(kk.subject).toBe('[FlowPilot almaty-2026] Ескерту: Ықтимал ағып кету — ALM-PS3-DUT1');
    expect(kk.text).toContain('Толығырақ: шекті мән: 0,5 м³/сағ; мәні: 0,8 м³/сағ');
    const ko = createNotificationRenderer({ pilot: { ...PILOT, language: 'ko' }, meters: METERS })(fired('alert-1'));
    expect(ko.subject).toBe('[FlowPilot almaty-2026] 알림 발생: 누수 의심 — ALM-PS3-DUT1');
    expect(ko.text).toContain('세부 정보: 임계값: 0.5 m³/h; 측정값: 0.8 m³/h');
  });

  it('falls back to English, key by key, for a language that lacks a text', () => {
    const languages = loadLanguages();
    const partial = { code: 'xx', name: 'X', locale: 'en', strings: { 'notify.rule.leak.title': 'Leak?' } };
    const render = createNotificationRenderer({ pilot: { ...PILOT, language: 'xx' }, meters: METERS, languages: [...languages, partial] });
    expect(render(fired('alert-1')).subject).toBe('[FlowPilot almaty-2026] Alert: Leak? — ALM-PS3-DUT1');
  });

  it('names alarm flags in the reader\'s words and escapes the HTML', () => {
    const render = createNotificationRenderer({ pilot: { ...PILOT, language: 'ru' }, meters: [{ id: 'M<1>', label: 'a & b' }] });
    const fire = render({ kind: 'fired', alert: alert({ rule: 'alarm', meterId: 'M<1>', details: { alarm: 'empty_pipe,tamper' } }) });
    expect(fire.text).toContain('сигнал: пустая труба, вскрытие');
    expect(fire.html).toContain('M&lt;1&gt; — a &amp; b');
    expect(fire.html).not.toContain('M<1>');
  });

  it.each(['en', 'ru', 'kk', 'ko'])('has a title, a meaning, an action and a resolution for every rule in %s', (code) => {
    const strings = loadLanguages().find((language) => language.code === code)?.strings ?? {};
    for (const rule of ALERT_RULES) {
      for (const part of ['title', 'meaning', 'action', 'resolved']) expect(strings[`notify.rule.${rule}.${part}`], `${code} ${rule} ${part}`).toBeTypeOf('string');
    }
  });
});
