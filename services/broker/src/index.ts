export * from './broker.ts';
export * from './admission.ts';
export * from './credentials.ts';
export * from './access-policy.ts';
export * from './session-persistence.ts';
export * from './cluster.ts';
