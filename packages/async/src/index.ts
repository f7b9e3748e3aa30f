export * from './map-limit.ts';
export * from './with-timeout.ts';
