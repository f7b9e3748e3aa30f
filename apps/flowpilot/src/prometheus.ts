import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NotifierStats } from '@flowpilot/api';
import type { FlowPilotBroker } from '@flowpilot/broker';
import type { Ingest, IngestEvents } from '@flowpilot/ingest';
import type { DurableStore } from '@flowpilot/store';

/**
 * Prometheus metrics of the pipeline (prom-client). The services keep plain counters in
 * `stats()` and know nothing of Prometheus; the gauges and counters here read those at scrape
 * time, so the hot path pays nothing. Only the InfluxDB write latency is observed per batch.
 */
export function createMetricsRegistry(nodeId?: string): Registry {
  const registry = new Registry();
  // A node of a broker cluster (SPEC section 11) labels every series with its id, so one
  // Prometheus scraping every node tells them apart.
  if (nodeId !== undefined) registry.setDefaultLabels({ node: nodeId });
  collectDefaultMetrics({ register: registry, prefix: 'flowpilot_process_' });
  return registry;
}

/** A counter whose value is a cumulative number the service already keeps. */
function cumulativeCounter(registry: Registry, name: string, help: string, read: () => Record<string, number>, label?: string): void {
  new Counter({
    name,
    help,
    labelNames: label ? [label] : [],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, value] of Object.entries(read())) {
        if (label) this.inc({ [label]: key }, value);
        else this.inc(value);
      }
    },
  });
}

/** The alert notifier's deliveries (services/api alerts/notifier.ts), by channel. */
export function registerNotifierMetrics(registry: Registry, notifier: { stats(): NotifierStats }): void {
  cumulativeCounter(registry, 'flowpilot_notifications_sent_total', 'Alert notifications delivered (webhook 2xx, e-mail accepted by the SMTP server), by channel', () => notifier.stats().sent, 'channel');
  cumulativeCounter(registry, 'flowpilot_notifications_failed_total', 'Failed attempts to deliver an alert notification (each is retried), by channel', () => notifier.stats().failed, 'channel');
  new Gauge({
    name: 'flowpilot_notifications_pending',
    help: 'Alert notifications waiting in the outbox for delivery, by channel',
    labelNames: ['channel'],
    registers: [registry],
    collect() {
      for (const [channel, value] of Object.entries(notifier.stats().pending)) this.set({ channel }, value);
    },
  });
}

export function registerBrokerMetrics(registry: Registry, broker: FlowPilotBroker): void {
  cumulativeCounter(registry, 'flowpilot_messages_received_total', 'Publishes to meters/+/readings and /status that passed the ACL', () => ({ all: broker.stats().messagesReceived }));
  cumulativeCounter(registry, 'flowpilot_records_accepted_total', 'Readings and status messages committed to the durable store (acknowledged)', () => ({ all: broker.stats().recordsAccepted }));
  cumulativeCounter(registry, 'flowpilot_messages_rejected_total', 'Rejected readings and status messages, kept as dead letters, by reason code', () => broker.stats().rejected, 'reason');
  cumulativeCounter(
    registry,
    'flowpilot_publishes_refused_total',
    'Publishes refused without PUBACK (the meter resends them), by cause',
    () => ({ store_full: broker.stats().refusedStoreFull, store_error: broker.stats().refusedStoreError }),
    'cause',
  );
  cumulativeCounter(
    registry,
    'flowpilot_limit_refusals_total',
    'Connections, logins and publishes refused by a limit of SPEC section 8 (packet_size, connection_rate, publish_rate, login_blocked, …)',
    () => broker.stats().refusedByLimit,
    'limit',
  );
  cumulativeCounter(registry, 'flowpilot_broker_hook_errors_total', 'Failures inside the broker\'s hooks, each turned into a refusal instead of a crash', () => ({ all: broker.stats().hookErrors }));
  new Gauge({
    name: 'flowpilot_connected_clients',
    help: 'MQTT clients connected to the broker (meters and services)',
    registers: [registry],
    collect() {
      this.set(broker.stats().connectedClients);
    },
  });
}

export function registerStoreMetrics(registry: Registry, store: DurableStore, clock: { now(): number } = Date): void {
  cumulativeCounter(
    registry,
    'flowpilot_dead_letters_not_stored_total',
    'Rejected messages over a meter\'s hourly dead-letter quota: counted by reason, not stored (SPEC section 8)',
    () => ({ all: store.deadLetterStats().notStored }),
  );
  new Gauge({
    name: 'flowpilot_store_depth_records',
    help: 'Records accepted but not yet confirmed by InfluxDB',
    registers: [registry],
    collect() {
      this.set(store.depth().records);
    },
  });
  new Gauge({
    name: 'flowpilot_store_oldest_age_seconds',
    help: 'Age of the oldest record waiting for InfluxDB (0 when the store is empty)',
    registers: [registry],
    collect() {
      const oldest = store.depth().oldestReceivedAtMs;
      this.set(oldest === null ? 0 : (clock.now() - oldest) / 1000);
    },
  });
  new Gauge({
    name: 'flowpilot_store_full',
    help: '1 while the store is at its limit and the broker refuses publishes',
    registers: [registry],
    collect() {
      this.set(store.isFull() ? 1 : 0);
    },
  });
}

/** Ingest events that feed the write latency histogram and the error counter. */
export function ingestMetricsEvents(registry: Registry): IngestEvents {
  const latency = new Histogram({
    name: 'flowpilot_influx_write_duration_seconds',
    help: 'Time to write one batch to InfluxDB (confirmed)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const lines = new Counter({ name: 'flowpilot_influx_lines_written_total', help: 'Lines InfluxDB confirmed', registers: [registry] });
  const refused = new Counter({ name: 'flowpilot_influx_lines_refused_total', help: 'Lines InfluxDB refused (kept as dead letters)', registers: [registry] });
  const errors = new Counter({ name: 'flowpilot_influx_write_errors_total', help: 'Failed InfluxDB writes, by class (retried)', labelNames: ['kind'], registers: [registry] });
  return {
    batchWritten(fact) {
      latency.observe(fact.latencyMs / 1000);
      lines.inc(fact.lines);
      refused.inc(fact.refused);
    },
    writeFailed(fact) {
      errors.inc({ kind: fact.kind });
    },
  };
}

export function registerIngestMetrics(registry: Registry, ingest: Ingest): void {
  new Gauge({
    name: 'flowpilot_influx_available',
    help: '1 when the last InfluxDB write succeeded, 0 while the ingest retries',
    registers: [registry],
    collect() {
      this.set(ingest.stats().influxAvailable ? 1 : 0);
    },
  });
}

export type ReadinessChecks = Record<string, () => { ok: boolean; reason?: string }>;

/**
 * `/metrics` on its own port, for the standalone broker and ingest (the api serves it on its own
 * port), with `/healthz` and `/readyz` (200 or 503, the api's shape) over the checks given: a
 * load balancer's health check of a broker node asks it (deploy/cluster/haproxy.cfg).
 */
export function serveMetrics(registry: Registry, port: number, host: string, readinessChecks: ReadinessChecks = {}): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}\n');
      return;
    }
    if (path === '/readyz') {
      // `?checks=redis,store` asks only those (a load balancer's check: a node whose InfluxDB is
      // down still accepts readings into its store, so it must not leave the pool for that).
      const only = new URL(req.url ?? '/', 'http://x').searchParams.get('checks')?.split(',');
      const chosen = Object.entries(readinessChecks).filter(([name]) => only === undefined || only.includes(name));
      const checks = Object.fromEntries(chosen.map(([name, check]) => [name, check()]));
      const ok = Object.values(checks).every((check) => check.ok);
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ status: ok ? 'ok' : 'degraded', checks })}\n`);
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404).end('see /metrics, /healthz or /readyz\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
