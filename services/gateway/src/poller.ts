import { findImplausible } from '@flowpilot/schema';
import type { DeviceConfig } from './config.ts';
import { classifyModbusError, endpointKey, endpointOf, ModbusReadError, type DeviceFailureKind, type FailureKind, type GatewayFailureKind, type ModbusClientFactory, type ModbusLink } from './modbus-link.ts';
import { decodeReading, planReads, type DecodedReading, type ReadRequest, type RegisterBlock } from './registers.ts';
import { nextBoundaryMs, sleep, TIMED_OUT, withDeadline, type Clock, type TimerHandle, type Timers } from './time.ts';

/**
 * The schedule of SPEC section 10: each device is polled on its interval's clock boundary
 * (intervalSec 60 → hh:mm:00.000), and each poll makes one reading or one counted skip.
 *
 * - **One master per bus.** Devices on one serial port (or behind one TCP address) share one
 *   link and one queue: their polls run one after another, in boundary order. Different buses
 *   run in parallel.
 * - **Retries within the interval.** A failed attempt (timeout, CRC, exception response,
 *   connection, undecodable registers) is retried after a short pause while the device's
 *   `retries` allow and the attempt can still end before the next boundary (each request is
 *   bounded by `timeoutMs`); then the poll is skipped with the last failure's kind.
 * - **Overrun.** A poll that could not even start before its next boundary (the bus was busy
 *   with the other devices' retries) is skipped as `overrun`: the bus is too slow for its
 *   devices' intervals, not the device faulty.
 * - **Never a made-up value.** A reading is what the device answered, decoded; anything short
 *   of that is a skip. The caller numbers both (seq), so a skip shows as a lost reading.
 */

/** A reading, or a skip with why; `boundaryMs` is the poll's time either way (the reading's `ts`). */
export type PollOutcome =
  | { ok: true; boundaryMs: number; decoded: DecodedReading; blocks: RegisterBlock[]; attempts: number }
  | { ok: false; boundaryMs: number; kind: FailureKind; message: string; attempts: number };

export interface PollerLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface PollerOptions {
  devices: readonly DeviceConfig[];
  modbus: ModbusClientFactory;
  clock: Clock;
  timers: Timers;
  log: PollerLog;
  /** Asked before each poll: a reason to skip it without asking the device (the outbox is full), or null. */
  admit(device: DeviceConfig): GatewayFailureKind | null;
  /** Each poll's outcome, in the order its bus made them. */
  onOutcome(device: DeviceConfig, outcome: PollOutcome): void;
  /** Pause between a failed attempt and the next (an RTU bus needs its silence after a bad frame). */
  retryPauseMs: number;
}

export const DEFAULT_RETRY_PAUSE_MS = 200;

export interface Poller {
  start(): void;
  /** Cancels the schedule, waits for the polls in progress (each is bounded by its timeouts), closes the links. */
  stop(): Promise<void>;
}

/**
 * A timer may fire a little before the wall clock shows its boundary (timers run on a monotonic
 * clock; NTP slews the wall clock): within this much it is the boundary's poll.
 */
const EARLY_TOLERANCE_MS = 50;
/** setTimeout's longest delay; a longer wait is taken in steps. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Every reading's numbers must be finite — JSON has no NaN (it would become null, a made-up
 * value) — and within SPEC section 1's plausibility bounds: a faulty meter's 3.4e38 (a float
 * register of all ones) is a failed poll counted here as `decode`, not a reading the broker
 * would refuse as ERR_OUT_OF_RANGE after it had taken a seq and a place in the outbox.
 */
function assertPublishable(decoded: DecodedReading): void {
  const fields = ['flowM3h', 'totalM3', 'totalReverseM3', 'velocityMps', 'pressureBar', 'temperatureC', 'batteryPct'] as const;
  for (const field of fields) {
    const value = decoded[field];
    if (value !== undefined && !Number.isFinite(value)) throw new ModbusReadError('decode', `${field} decoded to ${value}`);
  }
  const implausible = findImplausible({
    flow: decoded.flowM3h,
    total: decoded.totalM3,
    totalReverse: decoded.totalReverseM3,
    velocity: decoded.velocityMps,
    pressure: decoded.pressureBar,
    temperature: decoded.temperatureC,
    battery: decoded.batteryPct,
  });
  if (implausible !== null) throw new ModbusReadError('decode', implausible);
}

/** One attempt: every block of the plan, each bounded by the device's timeout, then decoded. */
async function attempt(link: ModbusLink, device: DeviceConfig, plan: readonly ReadRequest[], timers: Timers): Promise<{ decoded: DecodedReading; blocks: RegisterBlock[] }> {
  const blocks: RegisterBlock[] = [];
  for (const request of plan) {
    const words = await withDeadline(link.read(device.unitId, request, device.timeoutMs), device.timeoutMs, timers);
    if (words === TIMED_OUT) {
      link.abandon();
      throw new ModbusReadError('timeout', `${link.name} unit ${device.unitId} ${request.table} ${request.address}+${request.count}: no answer within ${device.timeoutMs} ms`);
    }
    blocks.push({ ...request, words });
  }
  const decoded = decodeReading(device.registers, blocks);
  assertPublishable(decoded);
  return { decoded, blocks };
}

/** Reads a device once, every block, without retries (`flowpilot gateway probe`). */
export function readOnce(link: ModbusLink, device: DeviceConfig, timers: Timers): Promise<{ decoded: DecodedReading; blocks: RegisterBlock[] }> {
  return attempt(link, device, planReads(device.registers), timers);
}

interface Bus {
  key: string;
  link: ModbusLink;
  /** The tail of the bus's queue: each poll starts when the one before it ended. */
  tail: Promise<void>;
}

interface DeviceSchedule {
  device: DeviceConfig;
  intervalMs: number;
  plan: ReadRequest[];
  bus: Bus;
  timer: TimerHandle | null;
  /** The boundary the timer is set for. */
  dueMs: number;
}

export function createPoller(options: PollerOptions): Poller {
  const { clock, timers, log } = options;
  const buses = new Map<string, Bus>();
  const schedules: DeviceSchedule[] = [];
  for (const device of options.devices) {
    const endpoint = endpointOf(device);
    const key = endpointKey(endpoint);
    let bus = buses.get(key);
    if (!bus) {
      bus = { key, link: options.modbus(endpoint), tail: Promise.resolve() };
      buses.set(key, bus);
    }
    // The plan is fixed by the register map: made once (a map that cannot be planned fails here, at start).
    schedules.push({ device, intervalMs: device.intervalSec * 1000, plan: planReads(device.registers), bus, timer: null, dueMs: 0 });
  }
  let stopped = false;

  function arm(schedule: DeviceSchedule, dueMs: number): void {
    schedule.dueMs = dueMs;
    const delay = Math.min(Math.max(0, dueMs - clock.now()), MAX_DELAY_MS);
    schedule.timer = timers.setTimeout(() => fire(schedule), delay);
  }

  function fire(schedule: DeviceSchedule): void {
    schedule.timer = null;
    if (stopped) return;
    const now = clock.now();
    if (now < schedule.dueMs - EARLY_TOLERANCE_MS) {
      // Early by the wall clock (a long wait taken in steps, or the clock was set back): wait on.
      arm(schedule, schedule.dueMs);
      return;
    }
    let boundaryMs = schedule.dueMs;
    if (now - boundaryMs >= schedule.intervalMs) {
      // Late by more than an interval (the host slept, or the clock was set forward): poll now, for
      // the latest boundary, so `ts` says when the device was really read.
      const latest = nextBoundaryMs(now, schedule.intervalMs) - schedule.intervalMs;
      log.warn({ meterId: schedule.device.meterId, dueAt: new Date(boundaryMs).toISOString(), now: new Date(now).toISOString() }, 'a poll came more than an interval late (host suspended or clock stepped); polling for the latest boundary');
      boundaryMs = latest;
    }
    arm(schedule, nextBoundaryMs(Math.max(now, boundaryMs), schedule.intervalMs));
    enqueue(schedule, boundaryMs);
  }

  function enqueue(schedule: DeviceSchedule, boundaryMs: number): void {
    const { bus } = schedule;
    bus.tail = bus.tail.then(async () => {
      if (stopped) return;
      let outcome: PollOutcome;
      try {
        outcome = await poll(schedule, boundaryMs);
      } catch (error) {
        // poll() classifies every failure it expects; this is a bug, still counted, never a crash.
        outcome = { ok: false, boundaryMs, kind: classifyModbusError(error), message: (error as Error).message, attempts: 0 };
      }
      options.onOutcome(schedule.device, outcome);
    });
  }

  async function poll(schedule: DeviceSchedule, boundaryMs: number): Promise<PollOutcome> {
    const { device, plan, bus } = schedule;
    const deadlineMs = boundaryMs + schedule.intervalMs;
    if (clock.now() >= deadlineMs) {
      return { ok: false, boundaryMs, kind: 'overrun', message: `the bus ${bus.key} was busy until the next boundary`, attempts: 0 };
    }
    const refusal = options.admit(device);
    if (refusal) return { ok: false, boundaryMs, kind: refusal, message: refusal, attempts: 0 };
    // An attempt's worst case: every request of the plan times out.
    const attemptMs = plan.length * device.timeoutMs;
    let attempts = 0;
    let failure: { kind: DeviceFailureKind; message: string } = { kind: 'timeout', message: '' };
    for (;;) {
      attempts += 1;
      try {
        const { decoded, blocks } = await attempt(bus.link, device, plan, timers);
        return { ok: true, boundaryMs, decoded, blocks, attempts };
      } catch (error) {
        failure = { kind: classifyModbusError(error), message: (error as Error).message };
        log.debug({ meterId: device.meterId, attempt: attempts, kind: failure.kind, err: failure.message }, 'poll attempt failed');
      }
      if (attempts > device.retries || stopped) break;
      // Retry only when the attempt can still end before the next boundary: that one has its own poll.
      if (clock.now() + options.retryPauseMs + attemptMs > deadlineMs) break;
      await sleep(timers, options.retryPauseMs);
      if (stopped) break;
    }
    return { ok: false, boundaryMs, kind: failure.kind, message: failure.message, attempts };
  }

  return {
    start() {
      const now = clock.now();
      for (const schedule of schedules) arm(schedule, nextBoundaryMs(now, schedule.intervalMs));
    },
    async stop() {
      stopped = true;
      for (const schedule of schedules) {
        if (schedule.timer !== null) timers.clearTimeout(schedule.timer);
        schedule.timer = null;
      }
      await Promise.all([...buses.values()].map((bus) => bus.tail));
      await Promise.all([...buses.values()].map((bus) => bus.link.close().catch(() => {})));
    },
  };
}
