export { createSimulator, DEFAULT_SIMULATOR_OPTIONS } from './simulator.ts';
export { FIRMWARE } from './mqtt-link.ts';
export type { Simulator, SimulatorLog, SimulatorOptions, SimulatorStats } from './simulator.ts';
export {
  createMeterModel,
  generateReadings,
  DEFAULT_ERROR_MODEL,
  DEFAULT_FAULT_OPTIONS,
  DEFAULT_MODEL_OPTIONS,
  DEFAULT_TOTALS_ANCHOR_MS,
  DEMO_FAULT_OPTIONS,
  SEQ_EPOCH_MS,
} from './meter-model.ts';
export type { ErrorModel, FaultOptions, MeterModel, ModelOptions, ModelOptionsInput } from './meter-model.ts';
export { demandLevel, meterZones } from './demand.ts';
export type { LeakOptions, Zones } from './demand.ts';
export { CONDITION_KINDS, CONDITIONS_GRAMMAR_HINT, DEFAULT_LOW_BATTERY_PCT, demoConditions, formatConditions, parseConditions, placeConditions } from './conditions.ts';
export type { Condition, ConditionKind, ConditionSpec } from './conditions.ts';
