export * from './ingest.ts';
export * from './backoff.ts';
