/** The public surface of @flowpilot/api (STYLE: index.ts is a workspace's only public surface). */
export { createApi, DEFAULT_API_OPTIONS } from './app.ts';
export type { ApiOptions } from './app.ts';
export { createMqttLiveFeed, DEFAULT_MQTT_LIVE_FEED_OPTIONS } from './live-feed.ts';
export type { LiveFeed, MeterLiveState, MqttLiveFeedOptions, ReadingListener } from './live-feed.ts';
export type { RejectionsProvider } from './metrics-routes.ts';
export { parseTimeParam } from './api-schemas.ts';
