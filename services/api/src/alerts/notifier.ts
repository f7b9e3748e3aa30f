import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { SendMailOptions } from 'nodemailer';
import type { Logger } from 'pino';
import { FlowPilotError } from '@flowpilot/schema';
import type { NotifyConfig } from '@flowpilot/schema';
import type { Language } from '@flowpilot/i18n';
import { NOTIFY_CHANNELS, OUTBOX_FILE_NAME, openDeliveryQueue } from './delivery-queue.ts';
import type { Destination, NotifyChannel, OutboxRow } from './delivery-queue.ts';
import { createNotificationRenderer } from './notification-text.ts';
import type { NotificationPilot, NotifiedMeter } from './notification-text.ts';
import type { AlertSink, AlertTransition } from './types.ts';

/**
 * Delivers the alert engine's transitions to the pilot file's `notify:` section (SPEC section 9):
 * a JSON POST to each webhook, signed when it has a secret, and one e-mail to the list of
 * recipients. The engine already turns a flapping condition into one fire and one resolve; the
 * notifier delivers each transition once to each destination, however long that takes:
 *
 * - notify() commits one row per destination to the outbox (delivery-queue.ts) before anything
 *   is attempted, so a crash or a restart loses nothing;
 * - each destination is a lane that sends its rows oldest first and one at a time, so a
 *   receiver sees "resolved" after "fired"; a lane that fails waits (exponential backoff with
 *   jitter, capped) and tries the same row again, for ever; other lanes go on meanwhile;
 * - a row is deleted only once the destination took it (a 2xx; the SMTP server accepted the
 *   message). A crash between the two sends it again: X-FlowPilot-Delivery (and the e-mail's
 *   Message-ID) let a receiver see that it has it already.
 */

export interface NotifyBackoffOptions {
  /** The wait after the first failed attempt. */
  initialMs: number;
  /** The longest wait, and the pace of retries that only an operator can fix (a 4xx, a refused login). */
  maxMs: number;
  factor: number;
  /** 0..1: each wait is spread by ± this share, so that lanes and restarts do not retry in step. */
  jitter: number;
}

export const DEFAULT_NOTIFY_BACKOFF: NotifyBackoffOptions = { initialMs: 1_000, maxMs: 300_000, factor: 2, jitter: 0.2 };

/** A webhook receiver that takes longer than this has failed; the attempt is retried. */
export const WEBHOOK_TIMEOUT_MS = 10_000;

/** What the notifier needs of nodemailer's transporter (a test passes its own). */
export interface MailTransport {
  sendMail(mail: SendMailOptions): Promise<{ accepted?: readonly unknown[]; rejected?: readonly unknown[]; response?: string }>;
  close?(): void;
}

export type NotifierLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface NotifierOptions {
  /** The pilot file's `notify:` section, validated. */
  notify: NotifyConfig;
  pilot: NotificationPilot;
  /** The pilot file's meters, so that a message names a meter by its label and site too. */
  meters?: readonly NotifiedMeter[];
  /** The outbox lives in `dataDir/alerts-outbox.sqlite`; null keeps it in memory (nothing survives a restart). */
  dataDir: string | null;
  /** Epoch ms now, for `sentAt` and the outbox's bookkeeping (STYLE habit 7). */
  clock?: () => number;
  /** The HTTP client of the webhooks (global fetch unless given). */
  fetch?: typeof fetch;
  /** Sends the e-mails instead of an SMTP transport built from `notify.email.smtp`. */
  transport?: MailTransport;
  log: NotifierLog;
  backoff?: Partial<NotifyBackoffOptions>;
  /** 0..1, for the jitter (Math.random unless given). */
  random?: () => number;
  webhookTimeoutMs?: number;
  /** How long close() waits for attempts in flight before it gives up on them (they are sent again on the next start). */
  closeTimeoutMs?: number;
  /** The strings files (loadLanguages() unless given). */
  languages?: readonly Language[];
}

export interface NotifierStats {
  /** Notifications the destinations took since this process started, by channel. */
  sent: Record<NotifyChannel, number>;
  /** Failed attempts since this process started (each is retried), by channel. */
  failed: Record<NotifyChannel, number>;
  /** Notifications waiting in the outbox for a configured destination, by channel. */
  pending: Record<NotifyChannel, number>;
  /** Rows in the outbox for a destination no longer in `notify:`: kept (delivered if it comes back), never attempted. */
  orphaned: number;
}

export type Notifier = AlertSink & {
  /** Resolves once nothing is waiting for a configured destination (or the notifier is closed). */
  flush(): Promise<void>;
  /** Stops attempting; what is not delivered stays in the outbox for the next start. */
  close(): Promise<void>;
  stats(): NotifierStats;
};

/** `sha256=<hex>` of HMAC-SHA256 over the exact body bytes (SPEC section 9: X-FlowPilot-Signature). */
export function signWebhookBody(body: string | Uint8Array, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** The wait after the `attempt`-th failure (1-based): initial × factor^(attempt−1), capped, jittered. */
export function notifyBackoffMs(attempt: number, options: NotifyBackoffOptions, random: () => number = Math.random): number {
  const exponential = Math.min(options.maxMs, options.initialMs * options.factor ** Math.max(0, attempt - 1));
  const spread = exponential * options.jitter * (2 * random() - 1);
  return Math.round(Math.min(options.maxMs, Math.max(0, exponential + spread)));
}

/** The notifier's counters in the Prometheus text format, for the process's /metrics. */
export function renderNotificationMetrics(stats: NotifierStats): string {
  const lines: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge', help: string, values: Record<NotifyChannel, number>): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const channel of NOTIFY_CHANNELS) lines.push(`${name}{channel="${channel}"} ${values[channel]}`);
  };
  family('flowpilot_notifications_sent_total', 'counter', 'Alert notifications delivered (webhook 2xx, e-mail accepted by the SMTP server), by channel', stats.sent);
  family('flowpilot_notifications_failed_total', 'counter', 'Failed attempts to deliver an alert notification (each is retried), by channel', stats.failed);
  family('flowpilot_notifications_pending', 'gauge', 'Alert notifications waiting in the outbox for delivery, by channel', stats.pending);
  return `${lines.join('\n')}\n`;
}

/** The result of one attempt. `operator`: only someone fixing the receiver or the settings helps, so retry at the capped pace and say so loudly. */
type Outcome = { ok: true; note?: string } | { ok: false; error: string; retryAfterMs?: number; operator?: boolean };

interface Lane extends Destination {
  /** How logs name it: never a webhook's full URL, whose path or query is often its secret. */
  label: string;
  send(row: OutboxRow, signal: AbortSignal): Promise<Outcome>;
  running: Promise<void> | undefined;
  /** kick() came while drain() ran: drain again once it ends. */
  again: boolean;
  timer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const causeText = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : undefined;
  return causeText ? `${error.message} (${causeText})` : error.message;
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (header.trim() !== '' && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid URL';
  }
}

/** An RFC 5322 msg-id from the alert, the same for every attempt: fire and resolve of one alert thread together. */
function messageIdOf(alertId: string, kind: AlertTransition['kind'], pilotId: string): string {
  const clean = (text: string): string => text.replace(/[^A-Za-z0-9._-]/g, '_');
  return `<${clean(alertId)}.${kind}.${clean(pilotId)}@flowpilot>`;
}

function smtpPassword(smtp: NonNullable<NotifyConfig['email']>['smtp']): string | undefined {
  if (smtp.password !== undefined) return smtp.password;
  if (smtp.passwordFile === undefined) return undefined;
  try {
    // A password file ends with a newline when written by an editor or `echo`; the password does not.
    return readFileSync(smtp.passwordFile, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new FlowPilotError('ERR_PILOT_CONFIG', `notify.email.smtp.passwordFile: cannot read ${smtp.passwordFile} (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`);
  }
}

export function createNotifier(options: NotifierOptions): Notifier {
  const { notify, pilot, log } = options;
  const clock = options.clock ?? (() => Date.now());
  const fetchImpl = options.fetch ?? fetch;
  const random = options.random ?? Math.random;
  const backoff: NotifyBackoffOptions = { ...DEFAULT_NOTIFY_BACKOFF, ...options.backoff };
  const webhookTimeoutMs = options.webhookTimeoutMs ?? WEBHOOK_TIMEOUT_MS;
  const closeTimeoutMs = options.closeTimeoutMs ?? 2_000;
  const render = createNotificationRenderer({ pilot, meters: options.meters ?? [], ...(options.languages ? { languages: options.languages } : {}) });

  const lanes: Lane[] = [];
  const seenUrls = new Set<string>();
  (notify.webhooks ?? []).forEach((hook, index) => {
    const label = `webhook ${index + 1} (${originOf(hook.url)})`;
    if (seenUrls.has(hook.url)) {
      log.warn({ webhook: label }, 'notify.webhooks lists this URL twice: it gets each notification once');
      return;
    }
    seenUrls.add(hook.url);
    lanes.push({
      key: `webhook:${hook.url}`,
      channel: 'webhook',
      label,
      running: undefined,
      again: false,
      timer: undefined,
      abort: undefined,
      send: (row, signal) => postWebhook(hook.url, hook.secret, row, signal),
    });
  });

  let transport: MailTransport | undefined;
  const email = notify.email;
  if (email) {
    if (options.transport) {
      transport = options.transport;
    } else {
      const password = smtpPassword(email.smtp);
      transport = nodemailer.createTransport({
        host: email.smtp.host,
        port: email.smtp.port,
        // TLS from the first byte on 465 (or when asked); otherwise nodemailer upgrades with STARTTLS whenever the server offers it.
        secure: email.smtp.secure ?? email.smtp.port === 465,
        ...(email.smtp.user !== undefined ? { auth: { user: email.smtp.user, ...(password !== undefined ? { pass: password } : {}) } } : {}),
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 30_000,
      });
    }
    const mailer = transport;
    lanes.push({
      key: 'email',
      channel: 'email',
      label: `e-mail (${email.smtp.host}:${email.smtp.port})`,
      running: undefined,
      again: false,
      timer: undefined,
      abort: undefined,
      send: (row) => sendMail(mailer, email.from, email.to, row),
    });
  }

  const laneKeys = new Set(lanes.map((lane) => lane.key));
  // No destination and no outbox left from an earlier configuration: nothing to open.
  const outboxFile = options.dataDir === null ? null : join(options.dataDir, OUTBOX_FILE_NAME);
  const outboxPath = outboxFile !== null && (lanes.length > 0 || existsSync(outboxFile)) ? outboxFile : null;
  const queue = openDeliveryQueue(outboxPath);
  let dbOpen = true;
  let closed = false;
  const sent: Record<NotifyChannel, number> = { webhook: 0, email: 0 };
  const failed: Record<NotifyChannel, number> = { webhook: 0, email: 0 };
  let flushWaiters: (() => void)[] = [];

  async function postWebhook(url: string, secret: string | undefined, row: OutboxRow, signal: AbortSignal): Promise<Outcome> {
    const body = Buffer.from(JSON.stringify({ event: row.kind, alert: row.alert, pilot: { id: pilot.id, name: pilot.name }, sentAt: new Date(clock()).toISOString() }), 'utf8');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'FlowPilot-Notifier',
      'x-flowpilot-delivery': row.deliveryId,
    };
    if (secret !== undefined) headers['x-flowpilot-signature'] = signWebhookBody(body, secret);
    let response: Response;
    try {
      // Redirects are not followed: fetch would turn the signed POST into a GET, or re-send the body to wherever the Location points.
      response = await fetchImpl(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.any([signal, AbortSignal.timeout(webhookTimeoutMs)]) });
    } catch (error) {
      return { ok: false, error: describeError(error) };
    }
    // The answer's content does not matter, and a receiver could send any amount of it: drop it unread.
    await response.body?.cancel().catch(() => undefined);
    const status = response.status;
    if (status >= 200 && status < 300) return { ok: true, note: `HTTP ${status}` };
    const after = retryAfterMs(response.headers.get('retry-after'), clock());
    if (status === 408 || status === 429 || status >= 500) return { ok: false, error: `HTTP ${status}`, ...(after !== undefined ? { retryAfterMs: after } : {}) };
    if (status >= 300 && status < 400) {
      return { ok: false, operator: true, error: `HTTP ${status}: the receiver redirects, and a signed POST is not redirected; put the final URL in notify.webhooks` };
    }
    return { ok: false, operator: true, error: `HTTP ${status}: the receiver refuses the notification; fix the receiver or notify.webhooks (retried every ${Math.round(backoff.maxMs / 1000)} s meanwhile)` };
  }

  async function sendMail(mailer: MailTransport, from: string, to: readonly string[], row: OutboxRow): Promise<Outcome> {
    const { subject, text, html } = render({ kind: row.kind, alert: row.alert });
    const messageId = messageIdOf(row.alert.id, row.kind, pilot.id);
    try {
      const info = await mailer.sendMail({
        from,
        to: [...to],
        subject,
        text,
        html,
        messageId,
        ...(row.kind === 'resolved' ? { inReplyTo: messageIdOf(row.alert.id, 'fired', pilot.id), references: [messageIdOf(row.alert.id, 'fired', pilot.id)] } : {}),
        headers: { 'X-FlowPilot-Delivery': row.deliveryId, 'X-FlowPilot-Alert': row.alert.id },
      });
      // Some recipients taken, some refused: sending again would repeat it to those who have it.
      const rejected = info.rejected ?? [];
      return { ok: true, note: rejected.length > 0 ? `refused for ${rejected.map(String).join(', ')}` : (info.response ?? 'accepted') };
    } catch (error) {
      const { responseCode, code } = error as { responseCode?: number; code?: string };
      // 5xx and a refused login: the server will say the same until someone changes the settings.
      const operator = (responseCode !== undefined && responseCode >= 500) || code === 'EAUTH' || code === 'EENVELOPE';
      return { ok: false, error: describeError(error), ...(operator ? { operator: true } : {}) };
    }
  }

  function pendingCounts(): { pending: Record<NotifyChannel, number>; orphaned: number } {
    const pending: Record<NotifyChannel, number> = { webhook: 0, email: 0 };
    let orphaned = 0;
    if (!dbOpen) return { pending, orphaned };
    for (const [key, n] of queue.pendingByDestination()) {
      const lane = lanes.find((candidate) => candidate.key === key);
      if (lane) pending[lane.channel] += n;
      else orphaned += n;
    }
    return { pending, orphaned };
  }

  function settleFlushWaiters(): void {
    if (flushWaiters.length === 0) return;
    const { pending } = pendingCounts();
    if (!closed && pending.webhook + pending.email > 0) return;
    const waiters = flushWaiters;
    flushWaiters = [];
    for (const resolve of waiters) resolve();
  }

  function kick(lane: Lane): void {
    if (closed || lane.timer) return;
    if (lane.running) {
      // drain() may be past its last look at the outbox: have it look again when it ends.
      lane.again = true;
      return;
    }
    lane.again = false;
    lane.running = drain(lane).finally(() => {
      lane.running = undefined;
      if (lane.again) kick(lane);
      settleFlushWaiters();
    });
  }

  function retryLater(lane: Lane, delayMs: number): void {
    if (closed) return;
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      kick(lane);
    }, delayMs);
  }

  /** Sends the lane's rows oldest first until it is empty or an attempt fails (then a timer takes over). */
  async function drain(lane: Lane): Promise<void> {
    try {
      while (!closed) {
        const row = queue.head(lane.key);
        if (!row) return;
        const attempt = row.attempts + 1;
        const context = { destination: lane.label, channel: lane.channel, delivery: row.deliveryId, alert: row.alert.id, rule: row.alert.rule, event: row.kind, attempt };
        log.debug(context, 'alert notification: attempt');
        lane.abort = new AbortController();
        let outcome: Outcome;
        try {
          outcome = await lane.send(row, lane.abort.signal);
        } catch (error) {
          outcome = { ok: false, error: describeError(error) };
        } finally {
          lane.abort = undefined;
        }
        // close() gave up waiting for this attempt and closed the outbox: the row stays, the next start sends it again.
        if (!dbOpen) return;
        if (outcome.ok) {
          queue.delivered(row.seq);
          sent[lane.channel] += 1;
          log.info({ ...context, result: outcome.note, waitedMs: clock() - row.createdAtMs }, 'alert notification delivered');
          settleFlushWaiters();
          continue;
        }
        failed[lane.channel] += 1;
        const exponential = notifyBackoffMs(attempt, backoff, random);
        const delayMs = outcome.operator ? backoff.maxMs : Math.max(exponential, Math.min(outcome.retryAfterMs ?? 0, backoff.maxMs));
        queue.failed(row.seq, outcome.error, clock() + delayMs);
        const failure = { ...context, error: outcome.error, retryInMs: delayMs };
        if (outcome.operator) log.error(failure, 'alert notification refused: it is retried, but only a change to the receiver or to notify: will get it through');
        else log.warn(failure, 'alert notification failed; retrying');
        retryLater(lane, delayMs);
        return;
      }
    } catch (error) {
      // The outbox itself failed (disk full, file removed): try again later rather than give up on the lane.
      log.error({ destination: lane.label, err: error }, 'alert outbox unusable; retrying');
      retryLater(lane, backoff.maxMs);
    }
  }

  const orphans = [...queue.pendingByDestination()].filter(([key]) => !laneKeys.has(key));
  for (const [key, n] of orphans) {
    const what = key.startsWith('webhook:') ? `webhook (${originOf(key.slice('webhook:'.length))})` : key;
    log.warn({ destination: what, pending: n }, 'the alert outbox holds notifications for a destination no longer in notify:; kept, and sent if it returns');
  }
  // Rows left by an earlier run are sent now, before anything new (they are older).
  for (const lane of lanes) kick(lane);

  return {
    notify(transition) {
      try {
        if (closed) {
          log.error({ alert: transition.alert.id, event: transition.kind }, 'alert notification after the notifier was closed: not sent');
          return;
        }
        if (lanes.length === 0) return;
        const rows = queue.enqueue(transition, lanes, clock());
        log.info({ alert: transition.alert.id, rule: transition.alert.rule, meter: transition.alert.meterId, event: transition.kind, destinations: rows.length }, 'alert notification queued');
        for (const lane of lanes) kick(lane);
      } catch (error) {
        // AlertSink.notify never throws: the engine's evaluation must go on whatever happens here.
        log.error({ err: error, alert: transition.alert.id, event: transition.kind }, 'alert notification could not be queued');
      }
    },

    flush() {
      if (closed) return Promise.resolve();
      return new Promise<void>((resolve) => {
        flushWaiters.push(resolve);
        settleFlushWaiters();
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const lane of lanes) {
        if (lane.timer) clearTimeout(lane.timer);
        lane.timer = undefined;
        lane.abort?.abort(new Error('the notifier is closing'));
      }
      const running = lanes.map((lane) => lane.running).filter((p): p is Promise<void> => p !== undefined);
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(running), new Promise<void>((resolve) => (timeout = setTimeout(resolve, closeTimeoutMs)))]);
      clearTimeout(timeout);
      settleFlushWaiters();
      dbOpen = false;
      queue.close();
      transport?.close?.();
    },

    stats() {
      return { sent: { ...sent }, failed: { ...failed }, ...pendingCounts() };
    },
  };
}
