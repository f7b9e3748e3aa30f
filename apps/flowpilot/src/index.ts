export { loadSettings, DEFAULT_SETTINGS, type Settings } from './settings.ts';
export { loadPilot } from './run-services.ts';
export { pipelineReadiness } from './run-services.ts';
export { createMetricsRegistry, registerStoreMetrics, registerBrokerMetrics, registerIngestMetrics, ingestMetricsEvents } from './prometheus.ts';
