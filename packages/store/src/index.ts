export * from './durable-store.ts';
export * from './private-files.ts';
