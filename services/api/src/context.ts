import type { InfluxClient, ReadingsRepository } from '@flowpilot/influx';
import type { MeterConfig, PilotConfig } from '@flowpilot/schema';
import type { MetricsSource } from '@flowpilot/report';
import type { ApiAlerts } from './alerts/api-alerts.ts';
import type { TokenVerifier } from './api-tokens.ts';
import type { LiveFeed } from './live-feed.ts';
import type { MetricsService } from './metrics-service.ts';
import type { ApiSettings } from './options.ts';
import type { DeadLetterAccess } from './routes/deadletters.ts';
import type { SignInPageRenderer } from './sign-in-page.ts';
import type { WindowPolicy } from './window.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The repository of stored readings (packages/influx, STYLE habit 12): every route's InfluxDB access. */
    readings: ReadingsRepository;
  }
}

/**
 * What every route plugin is registered with (createApi builds it once): the pilot, the
 * settings, the services the routes ask. Stored readings come from `app.readings`.
 */
export interface ApiContext {
  pilot: PilotConfig;
  /** The meter with this id, or ERR_METER_NOT_FOUND (404) naming the pilot. */
  meterOr404(id: string): MeterConfig;
  liveFeed: LiveFeed;
  clock: () => number;
  settings: ApiSettings;
  /** The window policy of every route with `from` and `to` (window.ts). */
  windows: WindowPolicy;
  /** SPEC section 4 metrics over stored readings. */
  metrics: MetricsService;
  /** A new source of the same metrics typed for @flowpilot/report for each report: it reads InfluxDB at the report's time, never the API's reading cache (the PDF route's source). */
  reportMetricsSource(): MetricsSource;
  /** For /readyz's ping. */
  influx: InfluxClient;
  tokens: TokenVerifier | undefined;
  signIn: SignInPageRenderer;
  deadLetters: DeadLetterAccess | undefined;
  /** SPEC section 9's alerts; null when this process runs without them (`alertsOff` says why). */
  alerts: ApiAlerts | null;
  alertsOff: string | null;
}
