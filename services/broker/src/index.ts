export * from './broker.ts';
export * from './credentials.ts';
export * from './access-policy.ts';
