import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NotifyConfig } from '@flowpilot/schema';
import { OUTBOX_FILE_NAME } from './delivery-queue.ts';
import { createNotifier } from './notifier.ts';
import type { Notifier, NotifierOptions } from './notifier.ts';
import type { Alert, AlertTransition } from './types.ts';

/*
 * The notifier against real receivers (issue 13): smtp-server takes the e-mails, a node:http
 * server the webhooks and checks their signatures; a receiver that refuses connections for a
 * while still gets every notification, once, in order; a restarted notifier sends what the
 * first left in its outbox. Backoff is shortened (tens of ms), never waited out in real minutes.
 */

const PILOT = { id: 'almaty-2026', name: 'Almaty water utility', timezone: 'Asia/Almaty', language: 'en' };
const METERS = [{ id: 'ALM-PS3-DUT1', label: 'Pump station 3 outlet, meter under test', site: 'PS3' }];
const FAST_BACKOFF = { initialMs: 20, maxMs: 200, factor: 2, jitter: 0.2 };

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-notify-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function notifier(options: Partial<NotifierOptions> & { notify: NotifyConfig }): Notifier {
  const created = createNotifier({ pilot: PILOT, meters: METERS, dataDir: null, log: pino({ level: 'silent' }), backoff: FAST_BACKOFF, ...options });
  cleanups.push(() => created.close());
  return created;
}

function alert(id: string, overrides: Partial<Alert> = {}): Alert {
  return {
    id,
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

const fired = (id: string): AlertTransition => ({ kind: 'fired', alert: alert(id) });
const resolved = (id: string): AlertTransition => ({ kind: 'resolved', alert: alert(id, { state: 'resolved', until: '2026-11-25T00:17:30.000Z' }) });

// --- a webhook receiver -------------------------------------------------------------------

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
  signatureValid: boolean;
  json: { event: string; alert: Alert; pilot: { id: string; name: string }; sentAt: string };
}

/** Verifies as a receiver should: HMAC of the raw bytes, compared in constant time. */
function signatureValid(body: Buffer, header: string | string[] | undefined, secret: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function startReceiver(secret: string, port = 0): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const valid = signatureValid(body, request.headers['x-flowpilot-signature'], secret);
      received.push({ headers: request.headers, body, signatureValid: valid, json: JSON.parse(body.toString('utf8')) as Received['json'] });
      response.writeHead(valid ? 200 : 401).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/flowpilot`, received, server };
}

/** A port nobody listens on (a receiver that is down refuses the connection). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// --- an SMTP server and just enough MIME to read what it got ------------------------------

interface Mail {
  headers: Map<string, string>;
  text: string;
  html: string;
}

function decodeTransfer(content: string, encoding: string | undefined): Buffer {
  switch ((encoding ?? '7bit').toLowerCase()) {
    case 'base64':
      return Buffer.from(content.replace(/\s+/g, ''), 'base64');
    case 'quoted-printable': {
      const soft = content.replace(/=\r?\n/g, '');
      const bytes: number[] = [];
      for (let i = 0; i < soft.length; i++) {
        if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
          bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
          i += 2;
        } else bytes.push(...Buffer.from(soft[i] as string, 'utf8'));
      }
      return Buffer.from(bytes);
    }
    default:
      return Buffer.from(content, 'utf8');
  }
}

/** RFC 2047 encoded words (a run of adjacent ones is one string: a character may span two). */
function decodeHeader(value: string): string {
  return value.replace(/(=\?[^?]+\?[BQbq]\?[^?]*\?=\s*)+/g, (run) => {
    const bytes = [...run.matchAll(/=\?[^?]+\?([BQbq])\?([^?]*)\?=/g)].map(([, encoding, text]) =>
      (encoding as string).toUpperCase() === 'B' ? Buffer.from(text as string, 'base64') : decodeTransfer((text as string).replace(/_/g, ' '), 'quoted-printable'),
    );
    return Buffer.concat(bytes).toString('utf8') + (/\s$/.test(run) ? ' ' : '');
  }).trim();
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

function parseMail(raw: string): Mail {
  const split = raw.indexOf('\r\n\r\n');
  const headers = parseHeaders(raw.slice(0, split));
  const body = raw.slice(split + 4);
  const parts: { headers: Map<string, string>; content: string }[] = [];
  const boundary = /boundary="?([^";]+)"?/.exec(headers.get('content-type') ?? '')?.[1];
  if (boundary) {
    for (const chunk of body.split(`--${boundary}`).slice(1)) {
      if (chunk.startsWith('--')) break;
      const at = chunk.indexOf('\r\n\r\n');
      parts.push({ headers: parseHeaders(chunk.slice(0, at)), content: chunk.slice(at + 4) });
    }
  } else parts.push({ headers, content: body });
  const part = (type: string): string => {
    const found = parts.find((p) => (p.headers.get('content-type') ?? '').startsWith(type));
    return found ? decodeTransfer(found.content, found.headers.get('content-transfer-encoding')).toString('utf8') : '';
  };
  for (const [name, value] of headers) headers.set(name, decodeHeader(value));
  return { headers, text: part('text/plain'), html: part('text/html') };
}

async function startSmtp(credentials: { user: string; password: string }): Promise<{ port: number; mails: Mail[]; envelopes: string[][] }> {
  const mails: Mail[] = [];
  const envelopes: string[][] = [];
  const server = new SMTPServer({
    // No certificate the client could trust here: plain SMTP with a login, as on a LAN relay.
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === credentials.user && auth.password === credentials.password) callback(null, { user: auth.username });
      else callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push(parseMail(Buffer.concat(chunks).toString('utf8')));
        envelopes.push(session.envelope.rcptTo.map((rcpt) => rcpt.address));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.server.address() as AddressInfo).port, mails, envelopes };
}

describe('notifier with real receivers', () => {
  it('mails the fire and the resolve through a real SMTP server, in Russian, in the pilot\'s zone, with a password file', async () => {
    const smtp = await startSmtp({ user: 'flowpilot', password: 'пароль-1' });
    const passwordFile = join(tempDir(), 'smtp-password');
    writeFileSync(passwordFile, 'пароль-1\n', { mode: 0o600 });
    const n = notifier({
      pilot: { ...PILOT, language: 'ru' },
      notify: { email: { smtp: { host: '127.0.0.1', port: smtp.port, user: 'flowpilot', passwordFile }, from: 'flowpilot@example.org', to: ['ops@example.org', 'field@example.org'] } },
    });
    n.notify(fired('alert-1'));
    n.notify(resolved('alert-1'));
    await n.flush();

    expect(smtp.mails).toHaveLength(2);
    expect(smtp.envelopes).toEqual([
      ['ops@example.org', 'field@example.org'],
      ['ops@example.org', 'field@example.org'],
    ]);
    const [fire, resolve] = smtp.mails as [Mail, Mail];
    expect(fire.headers.get('subject')).toBe('[FlowPilot almaty-2026] Проблема: Возможная утечка — ALM-PS3-DUT1');
    expect(fire.text).toContain('Счётчик: ALM-PS3-DUT1 — Pump station 3 outlet, meter under test, площадка PS3');
    expect(fire.text).toContain('Началось: 2026-11-25 03:12 (Asia/Almaty, UTC+05:00)');
    expect(fire.text).toContain('Что делать:');
    expect(fire.html).toContain('Возможная утечка');
    expect(fire.headers.get('x-flowpilot-delivery')).toMatch(/^[0-9a-f-]{36}$/);
    expect(resolve.headers.get('subject')).toBe('[FlowPilot almaty-2026] Решено: Возможная утечка — ALM-PS3-DUT1');
    expect(resolve.text).toContain('Закончилось: 2026-11-25 05:17 (Asia/Almaty, UTC+05:00)');
    // The resolve threads under the fire in a mail client.
    expect(resolve.headers.get('in-reply-to')).toBe(fire.headers.get('message-id'));
    expect(n.stats()).toMatchObject({ sent: { email: 2 }, failed: { email: 0 }, pending: { email: 0 } });
  });

  it('keeps retrying a refused SMTP login, and delivers once the server takes it', async () => {
    const smtp = await startSmtp({ user: 'flowpilot', password: 'right' });
    const password = { value: 'wrong' };
    // The transport is nodemailer's, built per attempt here so that the test can fix the password in between.
    const nodemailer = (await import('nodemailer')).default;
    const n = notifier({
      notify: { email: { smtp: { host: '127.0.0.1', port: smtp.port }, from: 'flowpilot@example.org', to: ['ops@example.org'] } },
      transport: {
        sendMail: (mail) => nodemailer.createTransport({ host: '127.0.0.1', port: smtp.port, auth: { user: 'flowpilot', pass: password.value } }).sendMail(mail),
      },
    });
    n.notify(fired('alert-1'));
    await vi.waitFor(() => expect(n.stats().failed.email).toBeGreaterThanOrEqual(1), { timeout: 10_000 });
    expect(smtp.mails).toHaveLength(0);
    password.value = 'right';
    await n.flush();
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.mails[0]?.headers.get('subject')).toBe('[FlowPilot almaty-2026] Alert: Possible leak — ALM-PS3-DUT1');
  });

  it('posts signed webhooks a real receiver verifies', async () => {
    const receiver = await startReceiver('s3cret');
    const n = notifier({ notify: { webhooks: [{ url: receiver.url, secret: 's3cret' }] } });
    n.notify(fired('alert-1'));
    n.notify(resolved('alert-1'));
    await n.flush();
    expect(receiver.received.map((r) => [r.json.event, r.signatureValid, r.headers['content-type']])).toEqual([
      ['fired', true, 'application/json'],
      ['resolved', true, 'application/json'],
    ]);
    expect(receiver.received[0]?.json.alert).toEqual(alert('alert-1'));
    expect(receiver.received[0]?.json.pilot).toEqual({ id: PILOT.id, name: PILOT.name });
  });

  it('a receiver signing with another secret refuses (401), and the notifier keeps the notification', async () => {
    const receiver = await startReceiver('the-receivers-secret');
    const n = notifier({ notify: { webhooks: [{ url: receiver.url, secret: 'another-secret' }] } });
    n.notify(fired('alert-1'));
    await vi.waitFor(() => expect(n.stats().failed.webhook).toBeGreaterThanOrEqual(1), { timeout: 10_000 });
    expect(receiver.received[0]?.signatureValid).toBe(false);
    expect(n.stats().pending.webhook).toBe(1);
  });

  it('a receiver that is down for a while gets every notification afterwards, once each, in order', async () => {
    const port = await freePort();
    const n = notifier({ notify: { webhooks: [{ url: `http://127.0.0.1:${port}/flowpilot`, secret: 's3cret' }] } });
    const transitions = [fired('a'), fired('b'), resolved('a'), fired('c'), resolved('b')];
    n.notify(transitions[0] as AlertTransition);
    n.notify(transitions[1] as AlertTransition);
    await vi.waitFor(() => expect(n.stats().failed.webhook).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
    for (const transition of transitions.slice(2)) n.notify(transition);
    expect(n.stats().pending.webhook).toBe(5);

    const receiver = await startReceiver('s3cret', port);
    await n.flush();
    expect(receiver.received.map((r) => `${r.json.event} ${r.json.alert.id}`)).toEqual(['fired a', 'fired b', 'resolved a', 'fired c', 'resolved b']);
    expect(receiver.received.every((r) => r.signatureValid)).toBe(true);
    expect(new Set(receiver.received.map((r) => r.headers['x-flowpilot-delivery'])).size).toBe(5);
    expect(n.stats()).toMatchObject({ sent: { webhook: 5 }, pending: { webhook: 0 } });
  });

  it('a notifier restarted on the same data directory delivers what the first left pending', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const notify: NotifyConfig = { webhooks: [{ url: `http://127.0.0.1:${port}/flowpilot`, secret: 's3cret' }] };

    const first = notifier({ notify, dataDir });
    first.notify(fired('a'));
    first.notify(resolved('a'));
    await vi.waitFor(() => expect(first.stats().failed.webhook).toBeGreaterThanOrEqual(1), { timeout: 10_000 });
    await first.close();
    // Owner only (SPEC section 8), like the durable store.
    expect(statSync(join(dataDir, OUTBOX_FILE_NAME)).mode & 0o777).toBe(0o600);

    // A configuration without that webhook keeps its rows rather than dropping them.
    const without = notifier({ notify: {}, dataDir });
    expect(without.stats()).toMatchObject({ orphaned: 2, pending: { webhook: 0 } });
    await without.close();

    const receiver = await startReceiver('s3cret', port);
    const second = notifier({ notify, dataDir });
    await second.flush();
    expect(receiver.received.map((r) => `${r.json.event} ${r.json.alert.id}`)).toEqual(['fired a', 'resolved a']);
    expect(receiver.received.every((r) => r.signatureValid)).toBe(true);
    expect(second.stats()).toMatchObject({ sent: { webhook: 2 }, pending: { webhook: 0 }, orphaned: 0 });
    await second.close();

    const third = notifier({ notify, dataDir });
    await third.flush();
    expect(receiver.received).toHaveLength(2);
  });
});
