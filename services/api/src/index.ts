/** The public surface of @flowpilot/api (STYLE: index.ts is a workspace's only public surface). */
export { createApi, DEFAULT_API_OPTIONS } from './app.ts';
export type { ApiOptions } from './app.ts';
export { createMqttLiveFeed, DEFAULT_MQTT_LIVE_FEED_OPTIONS } from './live-feed.ts';
export type { LiveFeed, MeterLiveState, MqttLiveFeedOptions, ReadingListener } from './live-feed.ts';
export type { RejectionsProvider } from './metrics-routes.ts';
export { parseTimeParam } from './api-schemas.ts';
export { API_ROLES, API_TOKEN_PREFIX, openApiTokenStore } from './api-tokens.ts';
export type { ApiRole, ApiTokenInfo, ApiTokenStore, TokenPrincipal, TokenVerifier } from './api-tokens.ts';
export { runTokensCommand, TOKENS_USAGE } from './tokens-command.ts';
export { isLoopbackAddress, ROUTE_ACCESS } from './access.ts';
export type { DeadLetterAccess, DeadLetterFilter, DeadLetterRecord, ReplayOutcome } from './deadletters-routes.ts';
