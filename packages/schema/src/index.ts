export * from './errors.ts';
export * from './topics.ts';
export * from './reading.ts';
export * from './plausibility.ts';
export * from './status.ts';
export * from './pilot.ts';
export * from './time-grammar.ts';
export * from './dead-letter.ts';
