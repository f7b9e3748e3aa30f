import type { FastifyPluginAsync } from 'fastify';
import type { ApiContext } from '../context.ts';
import { alertRoutes } from './alerts.ts';
import { dashboardRoutes } from './dashboard.ts';
import { deadLetterRoutes } from './deadletters.ts';
import { errorCurveRoutes } from './error-curve.ts';
import { healthRoutes } from './health.ts';
import { intervalsRoutes } from './intervals.ts';
import { liveRoutes } from './live.ts';
import { meterRoutes } from './meters.ts';
import { metricsRoutes } from './metrics.ts';
import { pilotRoutes } from './pilot.ts';
import { prometheusRoutes } from './prometheus.ts';
import { readingsRoutes } from './readings.ts';
import { reportRoutes } from './reports.ts';
import { sessionRoutes } from './session.ts';

/**
 * Every resource of the API (SPEC section 5), one plugin per file, in the order of the API table;
 * createApi registers each the same way, with the ApiContext.
 */
export const ROUTES: ReadonlyArray<FastifyPluginAsync<ApiContext>> = [
  healthRoutes,
  pilotRoutes,
  meterRoutes,
  readingsRoutes,
  liveRoutes,
  metricsRoutes,
  errorCurveRoutes,
  intervalsRoutes,
  reportRoutes,
  alertRoutes,
  deadLetterRoutes,
  sessionRoutes,
  prometheusRoutes,
  dashboardRoutes,
];
