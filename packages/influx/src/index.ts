/** @flowpilot/influx: the one place that speaks to InfluxDB (STYLE "The shape of the house"). */
export type { InfluxClient, InfluxClientDeps, InfluxConfig, InfluxSeries } from './client.ts';
export { createInfluxClient, DEFAULT_INFLUX_TIMEOUT_MS, redactUrl } from './client.ts';
export type { InfluxErrorKind } from './errors.ts';
export { InfluxError } from './errors.ts';
export type { IsolatedWriteResult } from './write-isolating.ts';
export { writeIsolating } from './write-isolating.ts';
export { readingLine, statusLine } from './line-protocol.ts';
export { quoteIdentifier, quoteString, timeLiteral } from './influxql.ts';
export type { LocalInflux, LocalInfluxOptions } from './local-influx.ts';
export { ensureInfluxdInstalled, startLocalInflux } from './local-influx.ts';
