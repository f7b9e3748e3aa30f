export * from './durable-store.ts';
