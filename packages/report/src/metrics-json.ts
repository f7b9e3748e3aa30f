import type { SourceMeterMetrics } from './metrics-source.ts';

function isMeterMetrics(value: unknown): value is SourceMeterMetrics {
  return typeof value === 'object' && value !== null && typeof (value as { meterId?: unknown }).meterId === 'string';
}

/**
 * The per-meter metrics of a `GET /api/v1/metrics` body. The route answers `{ …, meters: [...] }`;
 * a bare array or `{ metrics: [...] }` are read too, so the report does not break on an envelope
 * change that keeps the per-meter shape (`computeMeterMetrics`, SPEC section 4).
 */
export function metersFromMetricsJson(body: unknown): SourceMeterMetrics[] {
  const candidates: unknown[] = [body, (body as { meters?: unknown })?.meters, (body as { metrics?: unknown })?.metrics];
  for (const candidate of candidates) {
    if (Array.isArray(candidate) && candidate.every(isMeterMetrics)) return candidate;
  }
  // A map keyed by meter id.
  const byId = (body as { meters?: unknown })?.meters;
  if (byId && typeof byId === 'object' && Object.values(byId).every(isMeterMetrics)) return Object.values(byId) as SourceMeterMetrics[];
  throw new Error('The metrics answer holds no per-meter metrics (expected { meters: [{ meterId, completeness, … }] } as GET /api/v1/metrics returns)');
}
