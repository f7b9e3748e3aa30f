import type { FastifyPluginAsync } from 'fastify';
import type { ApiContext } from '../context.ts';

/**
 * `GET /metrics`: the pipeline's own counters for Prometheus, when the process around the API has
 * a registry (ApiOptions.metrics), followed by the API's own gauges:
 * - `flowpilot_meter_last_reading_age_seconds{meter}`: since the meter's last reading arrived
 *   (live; with alerts on, else its newest in InfluxDB); a meter never heard from has no series;
 * - `flowpilot_alerts_firing{rule,meter}`: 1 for each alert firing now (SPEC section 9; `meter=""`
 *   for the pipeline's rules), as Prometheus's own ALERTS series: no series when none fires.
 * `flowpilot alerts prometheus-rules` writes the same rules over these for Alertmanager.
 */
export const prometheusRoutes: FastifyPluginAsync<ApiContext> = async (app, { settings, pilot, liveFeed, alerts, clock }) => {
  const registry = settings.metrics;
  if (!registry) return;
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const own = apiGauges({
      nowMs: clock(),
      meterIds: pilot.meters.map((m) => m.id),
      lastReadingAtMs: (meterId) => alerts?.facts.lastReadingAtMs(meterId) ?? liveFeed.state(meterId)?.lastSeenMs ?? null,
      firing: alerts ? alerts.engine.firing() : null,
    });
    return reply.type(registry.contentType).send(withGauges(await registry.metrics(), own));
  });
};

/** A label value in the exposition format: backslash, double quote and line feed escaped. */
const label = (value: string): string => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export interface ApiGaugeInput {
  nowMs: number;
  meterIds: readonly string[];
  lastReadingAtMs(meterId: string): number | null;
  /** The alerts firing now; null without alerts (then no firing series either). */
  firing: ReadonlyArray<{ rule: string; meterId: string | null }> | null;
}

/** The API's gauges in the Prometheus text format. */
export function apiGauges(input: ApiGaugeInput): string {
  const lines = [
    '# HELP flowpilot_meter_last_reading_age_seconds Seconds since the meter\'s last reading arrived (no series before the first)',
    '# TYPE flowpilot_meter_last_reading_age_seconds gauge',
  ];
  for (const meterId of input.meterIds) {
    const at = input.lastReadingAtMs(meterId);
    if (at !== null) lines.push(`flowpilot_meter_last_reading_age_seconds{meter="${label(meterId)}"} ${Math.max(0, (input.nowMs - at) / 1000)}`);
  }
  if (input.firing) {
    lines.push('# HELP flowpilot_alerts_firing 1 for each FlowPilot alert firing now, by rule and meter (meter="" for the pipeline)', '# TYPE flowpilot_alerts_firing gauge');
    for (const alert of input.firing) lines.push(`flowpilot_alerts_firing{rule="${label(alert.rule)}",meter="${label(alert.meterId ?? '')}"} 1`);
  }
  return `${lines.join('\n')}\n`;
}

/** The registry's exposition with the API's gauges added (before OpenMetrics' closing `# EOF`). */
function withGauges(exposition: string, gauges: string): string {
  const eof = exposition.lastIndexOf('# EOF');
  if (eof >= 0 && exposition.slice(eof).trim() === '# EOF') return `${exposition.slice(0, eof)}${gauges}# EOF\n`;
  return `${exposition}${exposition.length === 0 || exposition.endsWith('\n') ? '' : '\n'}${gauges}`;
}
