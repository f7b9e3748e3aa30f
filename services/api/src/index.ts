/** The public surface of @flowpilot/api (STYLE: index.ts is a workspace's only public surface). */
export { createApi, DEFAULT_API_OPTIONS } from './app.ts';
export type { ApiOptions, ReadinessCheck } from './app.ts';
export { createMqttLiveFeed, DEFAULT_MQTT_LIVE_FEED_OPTIONS } from './live-feed.ts';
export type { LiveFeed, MeterLiveState, MqttLiveFeedOptions, ReadingListener } from './live-feed.ts';
export type { RejectionsProvider } from './metrics-service.ts';
/**
 * @deprecated The schema's `parseTime` (@flowpilot/schema) is the one time grammar; this name
 * stays while the command line (apps/flowpilot) still imports it from here.
 */
export { API_ROLES, API_TOKEN_PREFIX, openApiTokenStore } from './api-tokens.ts';
export type { ApiRole, ApiTokenInfo, ApiTokenStore, TokenPrincipal, TokenVerifier } from './api-tokens.ts';
export { runTokensCommand, tokensAdd, tokensList, tokensRevoke, TOKENS_USAGE } from './tokens-command.ts';
export type { TokensCommandIo } from './tokens-command.ts';
export { isLoopbackAddress, ROUTE_ACCESS } from './access.ts';
export type { DeadLetterAccess, DeadLetterFilter, DeadLetterRecord, ReplayOutcome } from './routes/deadletters.ts';
export { createInProcessMetricsSource } from './metrics-source.ts';
export { ALERT_RULES } from './alerts/types.ts';
export type { Alert, AlertRule, AlertSink, AlertState, AlertTransition } from './alerts/types.ts';
export { RULE_SEVERITY } from './alerts/rules.ts';
export type { ApiAlertsOptions } from './alerts/api-alerts.ts';
export { createNotifier, renderNotificationMetrics } from './alerts/notifier.ts';
export type { Notifier, NotifierOptions, NotifierStats } from './alerts/notifier.ts';
