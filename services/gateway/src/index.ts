export {};
// The pure half (issue 12): the register maps and their decoding, the gateway file, the profiles,
// and `flowpilot gateway check`.
export * from './registers.ts';
export * from './config.ts';
export {
  listShippedProfiles,
  loadProfile,
  readProfile,
  parseProfileText,
  isProfileName,
  SHIPPED_PROFILES_DIR,
  type GatewayProfile,
  type ProfileSource,
  type ConfigProblem,
} from './profiles.ts';
export * from './check-command.ts';
// The runtime (issue 12): the poller, the durable outbox, the MQTT publisher, metrics and /healthz,
// `createGateway` and `flowpilot gateway probe`.
export * from './gateway.ts';
export * from './outbox.ts';
export * from './modbus-link.ts';
export * from './poller.ts';
export * from './publisher.ts';
export * from './metrics.ts';
export * from './probe.ts';
export * from './time.ts';
