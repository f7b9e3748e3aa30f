import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FAILURE_KINDS } from './modbus-link.ts';
import type { Gateway, GatewayStats } from './gateway.ts';
import type { Clock } from './time.ts';

/**
 * The gateway's Prometheus metrics and /healthz. The gateway keeps plain counters (stats());
 * this renders them in the Prometheus text format (version 0.0.4) at scrape time, so a gateway
 * host needs nothing beyond the gateway itself.
 */

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(pairs: Record<string, string>): string {
  const entries = Object.entries(pairs);
  return entries.length === 0 ? '' : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge', help: string, samples: readonly [Record<string, string>, number][]): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [pairs, value] of samples) this.lines.push(`${name}${labels(pairs)} ${Number.isFinite(value) ? value : 0}`);
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

export function renderGatewayMetrics(stats: GatewayStats, nowMs: number): string {
  const out = new Exposition();
  const meter = (id: string) => ({ meter: id });
  const { devices, outbox } = stats;
  out.family('flowpilot_gateway_polls_total', 'counter', 'Polls made, one per interval boundary of each meter, whatever their outcome', devices.map((d) => [meter(d.meterId), d.polls]));
  out.family('flowpilot_gateway_readings_total', 'counter', 'Readings made and committed to the outbox', devices.map((d) => [meter(d.meterId), d.readings]));
  out.family(
    'flowpilot_gateway_poll_failures_total',
    'counter',
    'Polls skipped (no reading, seq still advances), by kind: timeout, crc, exception, connection, decode (the device); overrun, outbox_full, outbox_error (the gateway)',
    devices.flatMap((d) => FAILURE_KINDS.map((kind): [Record<string, string>, number] => [{ meter: d.meterId, kind }, d.failures[kind]])),
  );
  out.family('flowpilot_gateway_consecutive_failures', 'gauge', 'Device failures in a row (0 after a reading)', devices.map((d) => [meter(d.meterId), d.consecutiveFailures]));
  out.family('flowpilot_gateway_sensor_fault', 'gauge', '1 while the meter failed sensorFaultAfter polls in a row (its status carries "fault": "sensor_fault")', devices.map((d) => [meter(d.meterId), d.sensorFault ? 1 : 0]));
  out.family(
    'flowpilot_gateway_last_reading_age_seconds',
    'gauge',
    'Time since the poll time of the meter\'s last reading (-1 before the first)',
    devices.map((d) => [meter(d.meterId), d.lastReadingAtMs === null ? -1 : Math.max(0, (nowMs - d.lastReadingAtMs) / 1000)]),
  );
  out.family('flowpilot_gateway_published_total', 'counter', 'Readings the broker acknowledged (PUBACK) and the outbox let go', devices.map((d) => [meter(d.meterId), d.published]));
  out.family('flowpilot_gateway_publishes_total', 'counter', 'PUBLISH packets of readings acknowledged (an array of up to 1000 counts once)', devices.map((d) => [meter(d.meterId), d.publishes]));
  out.family('flowpilot_gateway_connected', 'gauge', '1 while the meter\'s MQTT connection to the broker is up', devices.map((d) => [meter(d.meterId), d.mqttConnected ? 1 : 0]));
  out.family('flowpilot_gateway_outbox_readings', 'gauge', 'Readings committed and not yet acknowledged by the broker', [[{}, outbox.readings]]);
  out.family('flowpilot_gateway_outbox_max_readings', 'gauge', 'The outbox\'s bound (outbox.maxReadings)', [[{}, outbox.maxReadings]]);
  out.family(
    'flowpilot_gateway_outbox_oldest_age_seconds',
    'gauge',
    'Age of the oldest reading waiting for its PUBACK, by its poll time (0 when none waits)',
    [[{}, outbox.oldestTsMs === null ? 0 : Math.max(0, (nowMs - outbox.oldestTsMs) / 1000)]],
  );
  out.family('flowpilot_gateway_outbox_full', 'gauge', '1 while the outbox is full and new polls are skipped (outbox_full)', [[{}, outbox.full ? 1 : 0]]);
  return out.text();
}

export interface GatewayHttpServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** `/metrics` (Prometheus) and `/healthz` (200 with the gateway's health as JSON) on host:port. */
export function serveGatewayHttp(gateway: Pick<Gateway, 'stats' | 'health'>, host: string, port: number, clock: Clock = { now: () => Date.now() }): Promise<GatewayHttpServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    try {
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(renderGatewayMetrics(gateway.stats(), clock.now()));
      } else if (path === '/healthz') {
        // 200 while the process runs: `status` says whether it is degraded, and why in `devices` and `outbox`.
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(gateway.health()));
      } else {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('see /metrics and /healthz\n');
      }
    } catch (error) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${(error as Error).message}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${shownHost}:${address.port}`,
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
