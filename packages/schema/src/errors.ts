/**
 * The one catalogue of FlowPilot's error codes (STYLE habit 5). Every rejection of a message
 * and every API error carries one of these codes; the message says what to do next.
 * Codes are stable: dashboards, dead letters and operators' scripts key on them.
 */
export const ERROR_CATALOGUE = {
  // A meter's message, rejected at the broker and kept as a dead letter (SPEC section 1).
  ERR_READING_JSON: { status: 400, message: 'The payload is not valid JSON. Check the meter firmware encodes readings as UTF-8 JSON.' },
  ERR_READING_SCHEMA: { status: 400, message: 'The reading does not match wire format v1 (SPEC section 1). Fix the named field in the meter firmware.' },
  ERR_READING_NON_FINITE: { status: 400, message: 'The meter must send finite numbers, never NaN or infinity.' },
  ERR_READING_VERSION: { status: 400, message: 'Unknown wire format version. This FlowPilot speaks "v": 1.' },
  ERR_METER_MISMATCH: { status: 400, message: 'The reading\'s meterId differs from the meter id in its topic. A meter publishes only its own readings.' },
  ERR_METER_UNKNOWN: { status: 400, message: 'The meter is not registered in the pilot. Add it to the pilot file, then replay its dead letters.' },
  ERR_OUT_OF_RANGE: {
    status: 400,
    message: 'A value is outside what a water meter can plausibly report (SPEC section 1). Check the meter\'s units and scaling (flow m³/h, totals m³, pressure bar) and its sensor.',
  },
  ERR_TS_FUTURE: { status: 400, message: 'The message\'s time is more than 5 minutes in the future. Check the meter\'s clock (NTP).' },
  ERR_TS_TOO_OLD: { status: 400, message: 'The message\'s time is older than the retention window. Check the meter\'s clock; epoch times must be milliseconds.' },
  ERR_PAYLOAD_TOO_LARGE: { status: 413, message: 'The payload is over the size limit. Send backfill as several arrays; keep a status message under 4 KiB.' },
  ERR_BATCH_TOO_LARGE: { status: 400, message: 'A batch holds more than 1000 readings. Send backfill as several arrays.' },
  ERR_STATUS_SCHEMA: { status: 400, message: 'The status message does not match {"online": boolean, "ts"?, "firmware"?}.' },
  ERR_INFLUX_REJECTED_LINE: { status: 400, message: 'InfluxDB refused this point (a field type conflict or a malformed line). It is kept as a dead letter.' },

  // Start-up configuration.
  ERR_PILOT_CONFIG: { status: 500, message: 'The pilot file is invalid. Fix each named field and start again.' },
  ERR_CONFIG: { status: 500, message: 'A setting is invalid. Fix the named variable and start again.' },
  ERR_GATEWAY_CONFIG: { status: 500, message: 'The gateway file is invalid. Fix each named field and start again.' },

  // The Modbus field gateway (SPEC section 10): registers that do not make a reading.
  ERR_GATEWAY_DECODE: {
    status: 502,
    message: 'The meter\'s registers did not make a reading: a value was not a finite number, or a register was not read. Compare the register map (table, address, type, word order) with the meter\'s manual, and its decoded values with its display using `flowpilot gateway probe`.',
  },

  // The command line (SPEC section 7), by what the operator must do: fix the command, or the network.
  ERR_USAGE: { status: 400, message: 'Run `flowpilot help` for the commands and their options.' },
  ERR_UNREACHABLE: { status: 503, message: 'Check that it runs and that the named address is right, then try again.' },

  // InfluxDB, as the ingest and the API see it.
  ERR_INFLUX_UNAVAILABLE: { status: 503, message: 'InfluxDB is not reachable. Check that it runs and FLOWPILOT_INFLUX_URL points to it; FlowPilot retries meanwhile.' },
  ERR_INFLUX_AUTH: { status: 500, message: 'InfluxDB refused the credentials. Set FLOWPILOT_INFLUX_USER and FLOWPILOT_INFLUX_PASSWORD, or FLOWPILOT_INFLUX_TOKEN.' },
  ERR_INFLUX_DATABASE: { status: 500, message: 'The InfluxDB database does not exist and could not be created. Create it or set FLOWPILOT_INFLUX_DB.' },
  ERR_INFLUX_QUERY: { status: 500, message: 'InfluxDB could not answer the query.' },

  // The HTTP API's answers to a caller's mistake (SPEC section 5).
  ERR_VALIDATION: { status: 400, message: 'A request parameter is invalid.' },
  ERR_METER_NOT_FOUND: { status: 404, message: 'No meter with this id is registered in the pilot.' },
  ERR_NOT_FOUND: { status: 404, message: 'No such route. See /docs for the API.' },
  ERR_NOT_READY: { status: 503, message: 'A dependency is not reachable yet.' },
  ERR_INTERNAL: { status: 500, message: 'An internal error occurred. The server log has the details.' },
  // The PDF report in a language whose font the server lacks (Hangul: Debian's fonts-nanum).
  ERR_REPORT_FONT: { status: 503, message: 'The server lacks a font this report language needs. Install the package the message names, then ask again: no restart is needed.' },

  // API access (SPEC section 8): tokens with roles, and the limits that keep one caller from starving the rest.
  ERR_UNAUTHENTICATED: { status: 401, message: 'This request needs an API token: send "Authorization: Bearer <token>" or sign in to the dashboard. An administrator creates one with `flowpilot tokens add <name> --role viewer`.' },
  ERR_FORBIDDEN: { status: 403, message: 'This token\'s role does not allow this request (viewer < evaluator < admin). Use a token with the role the message names.' },
  ERR_RATE_LIMITED: { status: 429, message: 'Too many expensive requests (metrics, reports, long windows) from this token or address. Wait the seconds in Retry-After, then try again.' },
  ERR_LIVE_FULL: { status: 503, message: 'The API already serves as many live streams as it may. Close another dashboard tab or try again shortly.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The reason codes a rejected MQTT message can carry (SPEC section 1), as data so tests can check membership. */
export const REJECTION_CODES = [
  'ERR_READING_JSON',
  'ERR_READING_SCHEMA',
  'ERR_READING_NON_FINITE',
  'ERR_READING_VERSION',
  'ERR_OUT_OF_RANGE',
  'ERR_METER_MISMATCH',
  'ERR_METER_UNKNOWN',
  'ERR_TS_FUTURE',
  'ERR_TS_TOO_OLD',
  'ERR_PAYLOAD_TOO_LARGE',
  'ERR_BATCH_TOO_LARGE',
  'ERR_STATUS_SCHEMA',
  'ERR_INFLUX_REJECTED_LINE',
] as const satisfies readonly ErrorCode[];

export type RejectionCode = (typeof REJECTION_CODES)[number];

/** An error that carries a catalogue code; `detail` is the specific part an operator needs. */
export class FlowPilotError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const entry = ERROR_CATALOGUE[code];
    super(detail ? `${detail}${detail.endsWith('\n') ? '' : '. '}${entry.message}` : entry.message, options);
    this.name = 'FlowPilotError';
    this.code = code;
    this.status = entry.status;
    this.detail = detail ?? '';
  }
}
