import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IClientOptions, MqttClient } from 'mqtt';
import { SMTPServer } from 'smtp-server';
import { onTestFinished } from 'vitest';
import { createApi, createMqttLiveFeed, createNotifier } from '@flowpilot/api';
import type { Alert, AlertRule, LiveFeed, Notifier } from '@flowpilot/api';
import { pipelineReadiness } from '@flowpilot/cli';
import type { InfluxClient } from '@flowpilot/influx';
import { parsePilotConfig } from '@flowpilot/schema';
import type { PilotConfig } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { connectMeter, quietLog, startTestPipeline } from './pipeline.ts';
import type { TestPipeline } from './pipeline.ts';
import { eventually } from './wait.ts';

/**
 * A world for the end-to-end tests of SPEC section 9's alerts, wired as `flowpilot start` wires
 * them (apps/flowpilot/src/run-services.ts runApi): real MQTT meters → FlowPilot's Aedes broker →
 * durable store → ingest → influxd; the API with its live feed subscribed to the broker, its
 * alerts kept in the data dir, fed by the store's lag, its dead-letter counts and the pipeline's
 * readiness checks; the notifier as the alerts' sink, delivering the pilot file's `notify:`
 * section to a real node:http webhook receiver that verifies `X-FlowPilot-Signature` and, when
 * asked, to a real SMTP server (smtp-server). Each world is its test's own (STYLE habit 9): its
 * ports, its temp data dir; it closes itself when the test finishes (vitest's onTestFinished).
 *
 * The engine's paces are shortened (evaluated every 250 ms, InfluxDB facts every 500 ms, dead
 * letters every 250 ms) so that a test waits seconds, not the production minutes.
 */

export const ALERTS_WORLD_TIMING = { evaluateEveryMs: 250, influxFactsEveryMs: 500, rejectionsEveryMs: 250 } as const;

const WEBHOOK_SECRET = 'alerts-e2e-webhook-secret';
const SMTP_LOGIN = { user: 'flowpilot', password: 'smtp-pw-1' };
/** The readiness threshold of the durable store's lag, as FLOWPILOT_READY_MAX_LAG_SEC's default. */
const READY_MAX_LAG_MS = 60_000;

// --- the webhook receiver -----------------------------------------------------------------

export interface WebhookDelivery {
  /** When the receiver had the whole body, epoch ms. */
  atMs: number;
  event: 'fired' | 'resolved';
  alert: Alert;
  pilot: { id: string; name: string };
  /** The HMAC-SHA256 of the raw body with the shared secret matched `X-FlowPilot-Signature`. */
  signatureValid: boolean;
  deliveryId: string;
}

export interface WebhookReceiver {
  url: string;
  secret: string;
  deliveries: WebhookDelivery[];
  close(): Promise<void>;
}

/** Verifies as a receiver should: HMAC of the raw bytes, compared in constant time (SPEC section 9). */
function signatureValid(body: Buffer, header: string | string[] | undefined, secret: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A webhook receiver on a free loopback port: answers 200 to a correctly signed POST, 401 otherwise (the notifier then retries). */
export async function startWebhookReceiver(secret = WEBHOOK_SECRET): Promise<WebhookReceiver> {
  const deliveries: WebhookDelivery[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const valid = signatureValid(body, request.headers['x-flowpilot-signature'], secret);
      const json = JSON.parse(body.toString('utf8')) as Pick<WebhookDelivery, 'event' | 'alert' | 'pilot'>;
      deliveries.push({ atMs: Date.now(), event: json.event, alert: json.alert, pilot: json.pilot, signatureValid: valid, deliveryId: String(request.headers['x-flowpilot-delivery']) });
      response.writeHead(valid ? 200 : 401).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/flowpilot`,
    secret,
    deliveries,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// --- the SMTP server ----------------------------------------------------------------------

export interface ReceivedMail {
  atMs: number;
  /** Lower-case header names, unfolded values (ASCII headers are all the tests read). */
  headers: Map<string, string>;
  recipients: string[];
}

export interface SmtpReceiver {
  port: number;
  mails: ReceivedMail[];
  close(): Promise<void>;
}

function mailHeaders(raw: string): Map<string, string> {
  const headers = new Map<string, string>();
  const block = raw.slice(0, raw.indexOf('\r\n\r\n'));
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** smtp-server with a login, plain SMTP as on a LAN relay (no certificate a client could trust here). */
export async function startSmtpReceiver(): Promise<SmtpReceiver> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === SMTP_LOGIN.user && auth.password === SMTP_LOGIN.password) callback(null, { user: auth.username });
      else callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push({ atMs: Date.now(), headers: mailHeaders(Buffer.concat(chunks).toString('utf8')), recipients: session.envelope.rcptTo.map((rcpt) => rcpt.address) });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.server.address() as AddressInfo).port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

// --- the world ----------------------------------------------------------------------------

export interface AlertsWorldOptions {
  /** The pilot file (YAML) without its `notify:` section: the world appends its own receivers there. */
  pilotFile: string;
  /** InfluxDB as the API sees it (createTestInflux's client, or one through a proxy). */
  influx: InfluxClient;
  /** InfluxDB as the ingest sees it, when not the API's (a proxy the test can take down). */
  ingestInflux?: InfluxClient;
  /** Also send the alerts by e-mail, through a real SMTP server. */
  email?: boolean;
}

export interface AlertsWorld {
  pilot: PilotConfig;
  pipeline: TestPipeline;
  webhook: WebhookReceiver;
  smtp: SmtpReceiver | null;
  notifier: Notifier;
  /** The API running now (restartApi replaces it). */
  api(): FastifyInstance;
  /** Its live feed. */
  feed(): LiveFeed;
  /** Connects a meter of the pilot as a meter does (its own login, persistent session); closed with the world. */
  meter(meterId: string, extra?: Partial<IClientOptions>): Promise<MqttClient>;
  /** GET /api/v1/alerts, with an optional query (`?state=firing`). */
  alerts(query?: string): Promise<Alert[]>;
  /** Waits (bounded) until the webhook received `event` of the alert of `rule` on `meterId` (null: a pipeline rule). */
  delivery(rule: AlertRule, meterId: string | null, event: WebhookDelivery['event'], timeoutMs: number): Promise<WebhookDelivery>;
  /** Stops the API and starts another on the same data dir; `clockOffsetMs` runs its clock that far ahead of the wall clock. */
  restartApi(options?: { clockOffsetMs?: number }): Promise<void>;
  close(): Promise<void>;
}

interface RunningApi {
  app: FastifyInstance;
  feed: LiveFeed;
}

export async function startAlertsWorld(options: AlertsWorldOptions): Promise<AlertsWorld> {
  const closers: (() => Promise<unknown> | void)[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const closer of closers.splice(0).reverse()) await closer();
  };
  onTestFinished(close);

  const webhook = await startWebhookReceiver();
  closers.push(() => webhook.close());
  const smtp = options.email ? await startSmtpReceiver() : null;
  if (smtp) closers.push(() => smtp.close());

  // The pilot file's `notify:` section names the receivers (SPEC section 9).
  const notify = [
    'notify:',
    '  webhooks:',
    `    - { url: "${webhook.url}", secret: "${webhook.secret}" }`,
    ...(smtp
      ? [
          '  email:',
          `    smtp: { host: 127.0.0.1, port: ${smtp.port}, user: ${SMTP_LOGIN.user}, password: ${SMTP_LOGIN.password} }`,
          '    from: flowpilot@example.org',
          '    to: [ops@example.org, field@example.org]',
        ]
      : []),
  ].join('\n');
  const pilot = parsePilotConfig(`${options.pilotFile.trimEnd()}\n${notify}\n`);

  const pipeline = await startTestPipeline({ pilot, influx: options.ingestInflux ?? options.influx });
  closers.push(() => pipeline.close());
  const dataDir = pipeline.dataDir;
  await pipeline.credentials.add('svc', 'service', 'svc-password');

  // As runApi: the notifier's outbox in the data dir, beside alerts.sqlite.
  const notifier = createNotifier({
    notify: pilot.notify,
    pilot: { id: pilot.pilot.id, name: pilot.pilot.name, timezone: pilot.pilot.timezone, language: pilot.pilot.language },
    meters: pilot.meters,
    dataDir,
    log: quietLog,
  });
  closers.push(() => notifier.close());

  let apiCount = 0;
  const startApi = async (clockOffsetMs: number): Promise<RunningApi> => {
    apiCount += 1;
    const feed = createMqttLiveFeed({ mqttUrl: pipeline.mqttUrl, username: 'svc', password: 'svc-password', clientId: `svc:api-${apiCount}`, pilot, reconnectPeriodMs: 200 });
    await eventually(() => feed.connected(), Boolean, 10_000, 'the live feed to connect');
    const { store, ingest } = pipeline;
    const app = await createApi({
      pilot,
      influx: options.influx,
      liveFeed: feed,
      log: quietLog,
      ...(clockOffsetMs !== 0 ? { clock: () => Date.now() + clockOffsetMs } : {}),
      readinessChecks: pipelineReadiness(store, ingest, READY_MAX_LAG_MS),
      readingCache: { writtenDays: store },
      rejections: (fromMs, toMs) => store.rejectionCountsByMeter(fromMs, toMs),
      alerts: {
        dataDir,
        sinks: [notifier],
        ...ALERTS_WORLD_TIMING,
        storeLagMs: () => {
          const oldest = store.depth().oldestReceivedAtMs;
          return oldest === null ? 0 : Math.max(0, Date.now() - oldest);
        },
      },
    });
    await app.ready();
    return { app, feed };
  };
  const stopApi = async ({ app, feed }: RunningApi): Promise<void> => {
    await app.close();
    await feed.close();
  };

  let running = await startApi(0);
  closers.push(() => stopApi(running));

  const passwords = new Map<string, string>();
  const meter = async (meterId: string, extra: Partial<IClientOptions> = {}): Promise<MqttClient> => {
    let password = passwords.get(meterId);
    if (password === undefined) {
      password = await pipeline.credentials.add(meterId, 'meter');
      passwords.set(meterId, password);
    }
    const client = await connectMeter(pipeline.mqttUrl, meterId, password, extra);
    closers.push(() => client.endAsync(true));
    return client;
  };

  const alerts = async (query = ''): Promise<Alert[]> => {
    const response = await running.app.inject(`/api/v1/alerts${query}`);
    if (response.statusCode !== 200) throw new Error(`GET /api/v1/alerts${query} answered ${response.statusCode}: ${response.body}`);
    return (response.json() as { alerts: Alert[] }).alerts;
  };

  const delivery = async (rule: AlertRule, meterId: string | null, event: WebhookDelivery['event'], timeoutMs: number): Promise<WebhookDelivery> => {
    const find = () => webhook.deliveries.find((d) => d.event === event && d.alert.rule === rule && d.alert.meterId === meterId);
    const found = await eventually(find, (d) => d !== undefined, timeoutMs, () => {
      const seen = webhook.deliveries.map((d) => `${d.event} ${d.alert.rule}/${d.alert.meterId ?? '-'}`).join(', ') || 'none';
      return `the webhook to receive "${event}" of ${rule} on ${meterId ?? 'the pipeline'}; received: ${seen}`;
    });
    return found as WebhookDelivery;
  };

  return {
    pilot,
    pipeline,
    webhook,
    smtp,
    notifier,
    api: () => running.app,
    feed: () => running.feed,
    meter,
    alerts,
    delivery,
    async restartApi({ clockOffsetMs = 0 } = {}) {
      await stopApi(running);
      running = await startApi(clockOffsetMs);
    },
    close,
  };
}
