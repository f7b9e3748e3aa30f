/** @flowpilot/influx: the one place that speaks to InfluxDB (STYLE "The shape of the house"). */
export type { InfluxClient, InfluxClientDeps, InfluxConfig, InfluxSeries } from './client.ts';
export { createInfluxClient, DEFAULT_INFLUX_TIMEOUT_MS, redactUrl } from './client.ts';
export type { InfluxErrorKind } from './errors.ts';
export { InfluxError } from './errors.ts';
export type { IsolatedWriteResult } from './write-isolating.ts';
export { writeIsolating } from './write-isolating.ts';
export { readingLine, statusLine } from './line-protocol.ts';
export { quoteIdentifier, quoteString, timeLiteral } from './influxql.ts';
export { METER_TAG, ONLINE_FIELD, READING_MEASUREMENT, SITE_TAG, STATUS_MEASUREMENT, STORED_FIELD, STORED_READING_FIELDS } from './storage.ts';
export type { ColumnsQuery, DayStamp, ReadingBucket, ReadingColumns, ReadingsRepository, StoredReading, TimeRange } from './readings-repository.ts';
export { columnsStatement, createReadingsRepository, durationLiteral, emptyReadingColumns, METERS_PER_QUERY, READING_COLUMN_NAMES } from './readings-repository.ts';
export { dropDatabase } from './database.ts';
export type { LocalInflux, LocalInfluxOptions } from './local-influx.ts';
export { ensureInfluxdInstalled, startLocalInflux } from './local-influx.ts';
export { contractWorld, createConsoleRunner, runInfluxV1Contract } from './v1-contract.ts';
export type { ConsoleRun, ContractCheckContext, ContractResult, ContractRunner, ContractWorld, InfluxV1ContractOptions, NamedQuery } from './v1-contract.ts';
