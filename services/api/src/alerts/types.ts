export const ALERT_RULES = ['stale', 'offline', 'leak', 'alarm', 'low_battery', 'totalizer', 'rejected', 'store_lag', 'influx_down'] as const;
export type AlertRule = (typeof ALERT_RULES)[number];
export type AlertState = 'firing' | 'resolved';
export interface Alert { id: string; rule: AlertRule; meterId: string | null; state: AlertState; since: string /* ISO */; until: string | null; message: string /* English, for the API and logs */; details: Record<string, string | number | null> /* e.g. threshold, value, alarm */ }
export interface AlertTransition { kind: 'fired' | 'resolved'; alert: Alert }
export interface AlertSink { notify(transition: AlertTransition): void /* never throws */ }
