#!/usr/bin/python3
"""A flowmeter behind Modbus, for the field gateway's end-to-end tests (SPEC section 10).

A Modbus server nobody here wrote: Debian's python3-pymodbus (3.0.x), as a TCP server or as an
RTU server on a serial device (a pseudo-terminal made by socat in the tests). Its registers are
driven by a flow profile: every tick (100 ms) it computes the flow at that time and the
totalizers integrated from the profile, encodes each quantity per the register map, and writes
them all in one step of the event loop, so a read never sees half of a tick.

    modbus_device.py --transport tcp --port 5020 --unit-id 1 --map MAP --profile PROFILE
    modbus_device.py --transport rtu --device /dev/pts/3 --baudrate 9600 --parity N \\
                     --unit-id 1 --map MAP --profile PROFILE

--unit-id takes one id or several (`1,2,5-8`): every unit id listed answers from the same
registers, so one server plays several meters behind one address (a Modbus TCP-to-RTU converter,
or one RS-485 bus), each of which a gateway may read through a different register map.

MAP is JSON, or @file: {name: {table, address, type, wordOrder?, scale?, offset?, source?, value?}}
  table      holding | input
  address    0-based register address (the PDU address: 0 is the first register)
  type       int16 | uint16 | int32 | uint32 | float32 | float64
  wordOrder  big (default: the most significant word first) | little; bytes within a
             register are always big-endian, as Modbus has them
  scale, offset   the gateway decodes raw * scale + offset, so the device stores
             (value - offset) / scale (rounded for integer types, clamped to the type's range)
  source     flow (m3/h) | total (forward m3) | totalReverse (m3); a name that is one of
             these is its own source
  value      a constant, for any other quantity (temperature, alarm bits, ...)
PROFILE is JSON, or @file: a list of [secondsFromStart, flowM3h] steps (the flow holds from one
step to the next, the last one for ever; 0 before the first), or a number (a constant flow).
The totals are integrated from the profile exactly, from --initial-total and
--initial-total-reverse, not summed tick by tick, so they do not depend on when ticks ran.

Stdout is JSON lines, flushed each:
  {"event": "listening", "transport": "tcp", "port": 5020}   (or "device": "/dev/pts/3")
  {"event": "held", "tick": 12, "ts": <epoch ms>, "t": 1.2, "flow": .., "total": ..,
   "totalReverse": .., "held": {name: the value its registers now encode, as decoded}}
     every --log-every-ms (1000; at most every tick)
  {"event": "fault", "command": "silent 5", "fault": "silent", "untilTs": <epoch ms>|null}
  {"event": "corrupted", "ts": <epoch ms>, "unitId": 1, "functionCode": 3, "byte": 3,
   "remaining": <responses still to corrupt>|null}   (each frame sent corrupted)
  {"event": "error", "message": ".."}   (then exit code 2)
Stdin takes one command a line:
  silent [<seconds>]              stop answering (requests are read and dropped)
  exception [<seconds>] [<code>]  answer every request with Modbus exception <code> (4,
                                  server device failure, by default)
  corrupt [<responses>]           RTU only: send the next <responses> answers (every answer
                                  until `normal` when absent) with one data byte flipped, so
                                  their CRC no longer matches (line noise on the bus)
  normal                          end a fault (and the corruption) now
  stop                            exit (so does the end of stdin, and SIGTERM)
"""

import argparse
import asyncio
import json
import math
import os
import signal
import struct
import sys
import time

try:
    from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
    from pymodbus.framer.rtu_framer import ModbusRtuFramer
    from pymodbus.framer.socket_framer import ModbusSocketFramer
    from pymodbus.pdu import ExceptionResponse
    from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer
    import pymodbus
except ImportError as error:  # pragma: no cover - the TypeScript side installs it first
    print(json.dumps({"event": "error", "message": f"pymodbus is not installed ({error}): apt-get install python3-pymodbus"}), flush=True)
    sys.exit(2)

TYPES = {
    # struct format, registers, integer range (None for floats)
    "int16": (">h", 1, (-(2**15), 2**15 - 1)),
    "uint16": (">H", 1, (0, 2**16 - 1)),
    "int32": (">i", 2, (-(2**31), 2**31 - 1)),
    "uint32": (">I", 2, (0, 2**32 - 1)),
    "float32": (">f", 2, None),
    "float64": (">d", 4, None),
}
TABLES = {"holding": 3, "input": 4}  # the read function codes the datastore is addressed by
SOURCES = ("flow", "total", "totalReverse")
ENTRY_KEYS = {"table", "address", "type", "wordOrder", "scale", "offset", "source", "value", "unit"}


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def load_json(text):
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as file:
            return json.load(file)
    return json.loads(text)


def check_map(register_map):
    """Every problem of the map at once, or an empty list."""
    problems = []
    if not isinstance(register_map, dict) or not register_map:
        return ["the map must be a JSON object of at least one quantity"]
    used = {}
    for name, entry in register_map.items():
        where = f"map.{name}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        if entry.get("table") not in TABLES:
            problems.append(f"{where}.table: expected holding or input")
        if entry.get("type") not in TYPES:
            problems.append(f"{where}.type: expected one of {', '.join(TYPES)}")
        address = entry.get("address")
        if not isinstance(address, int) or isinstance(address, bool) or not 0 <= address <= 65535:
            problems.append(f"{where}.address: expected a whole number 0-65535")
        if entry.get("wordOrder", "big") not in ("big", "little"):
            problems.append(f"{where}.wordOrder: expected big or little")
        scale = entry.get("scale", 1)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale == 0 or not math.isfinite(scale):
            problems.append(f"{where}.scale: expected a finite number other than 0")
        offset = entry.get("offset", 0)
        if not isinstance(offset, (int, float)) or isinstance(offset, bool) or not math.isfinite(offset):
            problems.append(f"{where}.offset: expected a finite number")
        source = entry.get("source", name if name in SOURCES else None)
        if source is None and not isinstance(entry.get("value"), (int, float)):
            problems.append(f"{where}: needs a source ({', '.join(SOURCES)}) or a constant value")
        if source is not None and source not in SOURCES:
            problems.append(f"{where}.source: expected one of {', '.join(SOURCES)}")
        if entry.get("table") in TABLES and entry.get("type") in TYPES and isinstance(address, int) and 0 <= address <= 65535:
            count = TYPES[entry["type"]][1]
            if address + count > 65536:
                problems.append(f"{where}.address: {entry['type']} at {address} runs past register 65535")
            for register in range(address, address + count):
                other = used.get((entry["table"], register))
                if other is not None:
                    problems.append(f"{where}: register {entry['table']} {register} is also {other}'s")
                used[(entry["table"], register)] = name
    return problems


def parse_unit_ids(text):
    """`1`, `1,2,3` or `1-50` (mixed too) → (the ids in order, each once; a problem or None)."""
    ids = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            first, last = int(low), int(high) if high else int(low)
            if last < first:
                raise ValueError
            if first < 0 or last > 247:
                return [1], f"--unit-id {text}: expected ids 0-247"
            ids.extend(unit for unit in range(first, last + 1) if unit not in ids)
    except ValueError:
        return [1], f"--unit-id {text}: expected ids or ranges such as 1,2,5-8"
    return ids, None


def check_profile(profile):
    if isinstance(profile, (int, float)) and not isinstance(profile, bool) and math.isfinite(profile):
        return [[0, float(profile)]], []
    if not isinstance(profile, list) or not profile:
        return None, ["the profile must be a number or a list of [secondsFromStart, flowM3h] steps"]
    problems = []
    last = -math.inf
    for i, step in enumerate(profile):
        ok = isinstance(step, list) and len(step) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in step)
        if not ok:
            problems.append(f"profile[{i}]: expected [secondsFromStart, flowM3h]")
            continue
        if step[0] < 0 or step[0] <= last:
            problems.append(f"profile[{i}]: the times must start at 0 or later and increase")
        last = step[0]
    return [[float(t), float(f)] for t, f in profile] if not problems else None, problems


class Profile:
    """Piecewise-constant flow, and its integrals over time (forward and reverse, m3)."""

    def __init__(self, steps, initial_total, initial_reverse):
        self.steps = steps
        self.initial_total = initial_total
        self.initial_reverse = initial_reverse

    def flow(self, t):
        current = 0.0
        for start, flow in self.steps:
            if start > t:
                break
            current = flow
        return current

    def totals(self, t):
        forward, reverse = self.initial_total, self.initial_reverse
        for i, (start, flow) in enumerate(self.steps):
            if start >= t:
                break
            end = min(t, self.steps[i + 1][0]) if i + 1 < len(self.steps) else t
            volume = flow * (end - start) / 3600.0
            if volume > 0:
                forward += volume
            else:
                reverse -= volume
        return forward, reverse


def encode(entry, value):
    """(the registers, the value they hold as the gateway decodes them: raw * scale + offset)."""
    fmt, _, limits = TYPES[entry["type"]]
    scale, offset = entry.get("scale", 1), entry.get("offset", 0)
    raw = (value - offset) / scale
    clamped = False
    if limits is None:
        packed = struct.pack(fmt, raw)
        raw = struct.unpack(fmt, packed)[0]  # what float32 keeps of it
    else:
        rounded = int(round(raw))
        raw = min(max(rounded, limits[0]), limits[1])
        clamped = raw != rounded
        packed = struct.pack(fmt, raw)
    words = [int.from_bytes(packed[i:i + 2], "big") for i in range(0, len(packed), 2)]
    if entry.get("wordOrder", "big") == "little":
        words.reverse()
    return words, raw * scale + offset, clamped


class Device:
    def __init__(self, args, register_map, profile):
        self.args = args
        self.map = register_map
        self.profile = profile
        self.unit_ids = args.unit_ids
        self.unit_id = args.unit_ids[0]
        size = 65536
        # zero_mode: request address 0 is block address 0 (pymodbus 3.0 adds 1 otherwise).
        self.slave = ModbusSlaveContext(
            hr=ModbusSequentialDataBlock(0, [0] * size),
            ir=ModbusSequentialDataBlock(0, [0] * size),
            zero_mode=True,
        )
        # One datastore behind every unit id: the meters of one address hold the same registers.
        self.context = ModbusServerContext(slaves={unit: self.slave for unit in self.unit_ids}, single=False)
        self.fault = None  # (kind, until monotonic or None, exception code)
        self.corrupt = None  # answers still to corrupt (math.inf: until `normal`), or None
        self.rtu_framer = ModbusRtuFramer(None) if args.transport == "rtu" else None
        self.started = None
        self.tick_index = 0
        self.warned_clamp = set()
        self.stopping = asyncio.Event()

    # --- faults -----------------------------------------------------------------------------
    def active_fault(self):
        if self.fault is None:
            return None
        kind, until, code = self.fault
        if until is not None and time.monotonic() >= until:
            self.fault = None
            emit("fault", command="(expired)", fault="normal", untilTs=None)
            return None
        return kind, code

    def corrupted(self, response):
        """The RTU frame of `response` with its first data byte flipped: its CRC no longer matches."""
        frame = bytearray(self.rtu_framer.buildPacket(response))
        # unit, function, byte count, data..., CRC lo, CRC hi: flip the first data byte (or the
        # last byte before the CRC of a shorter frame), so the receiver sees a CRC error, not a
        # frame of another unit or another length.
        index = 3 if len(frame) > 5 else len(frame) - 3
        frame[index] ^= 0xFF
        self.corrupt -= 1
        remaining = None if self.corrupt == math.inf else int(self.corrupt)
        if self.corrupt <= 0:
            self.corrupt = None
        emit("corrupted", ts=round(time.time() * 1000), unitId=response.unit_id, functionCode=response.function_code, byte=index, remaining=remaining)
        return bytes(frame)

    def manipulate(self, response):
        """pymodbus's response_manipulator: (response, skip_encoding)."""
        fault = self.active_fault()
        if fault is None:
            if self.corrupt is not None and response.should_respond:
                return self.corrupted(response), True  # bytes, sent as they are
            return response, False
        kind, code = fault
        if kind == "silent":
            response.should_respond = False  # the server then sends nothing
            return response, False
        original = response.function_code & 0x7F
        replaced = ExceptionResponse(original, code)
        replaced.transaction_id = response.transaction_id
        replaced.unit_id = response.unit_id
        return replaced, False

    def command(self, line):
        words = line.split()
        if not words:
            return
        verb, rest = words[0], words[1:]
        try:
            if verb in ("silent", "exception"):
                seconds = float(rest[0]) if rest else None
                code = int(rest[1]) if len(rest) > 1 else 4
                if (seconds is not None and not seconds > 0) or not 1 <= code <= 255:
                    raise ValueError
                until = time.monotonic() + seconds if seconds is not None else None
                self.fault = (verb, until, code)
                until_ts = round(time.time() * 1000 + seconds * 1000) if seconds is not None else None
                emit("fault", command=line, fault=verb, untilTs=until_ts, **({"code": code} if verb == "exception" else {}))
            elif verb == "corrupt" and len(rest) <= 1:
                if self.rtu_framer is None:
                    emit("fault", command=line, error="corrupt is for RTU only: a Modbus TCP frame has no CRC (TCP's own checksum guards it)")
                    return
                count = int(rest[0]) if rest else None
                if count is not None and count < 1:
                    raise ValueError
                self.corrupt = math.inf if count is None else count
                emit("fault", command=line, fault="corrupt", untilTs=None, **({"responses": count} if count is not None else {}))
            elif verb == "normal" and not rest:
                self.fault = None
                self.corrupt = None
                emit("fault", command=line, fault="normal", untilTs=None)
            elif verb == "stop" and not rest:
                self.stopping.set()
            else:
                raise ValueError
        except (ValueError, IndexError):
            emit("fault", command=line, error="expected: silent [seconds] | exception [seconds] [code] | corrupt [responses] | normal | stop")

    # --- the registers ----------------------------------------------------------------------
    def write_tick(self):
        t = time.monotonic() - self.started
        flow = self.profile.flow(t)
        total, total_reverse = self.profile.totals(t)
        values = {"flow": flow, "total": total, "totalReverse": total_reverse}
        held = {}
        # All in one step of the event loop: a request is served before or after, never between.
        for name, entry in self.map.items():
            source = entry.get("source", name if name in SOURCES else None)
            value = values[source] if source is not None else float(entry["value"])
            words, holds, clamped = encode(entry, value)
            if clamped and name not in self.warned_clamp:
                self.warned_clamp.add(name)
                print(f"modbus_device: {name} = {value} does not fit {entry['type']} with scale {entry.get('scale', 1)}: clamped", file=sys.stderr, flush=True)
            self.slave.setValues(TABLES[entry["table"]], entry["address"], words)
            held[name] = holds
        return t, values, held

    async def tick_forever(self):
        tick_s = self.args.tick_ms / 1000.0
        log_every = max(1, round(self.args.log_every_ms / self.args.tick_ms))
        while not self.stopping.is_set():
            self.active_fault()  # a fault that has run its time ends (and says so) on the tick
            t, values, held = self.write_tick()
            if self.tick_index % log_every == 0:
                emit("held", tick=self.tick_index, ts=round(time.time() * 1000), t=t, **values, held=held)
            self.tick_index += 1
            # The next tick on the grid from the start, so ticks do not drift.
            delay = self.started + self.tick_index * tick_s - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self.stopping.wait(), delay)
                except asyncio.TimeoutError:
                    pass


def read_commands(device):
    """Stdin lines as commands; the end of stdin (the test runner went away) stops the device."""
    loop = asyncio.get_running_loop()
    buffer = bytearray()
    fd = sys.stdin.fileno()

    def readable():
        chunk = os.read(fd, 4096)
        if not chunk:
            loop.remove_reader(fd)
            device.stopping.set()
            return
        buffer.extend(chunk)
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            device.command(line.decode("utf-8", "replace").strip())

    loop.add_reader(fd, readable)


async def run(args):
    register_map = load_json(args.map)
    problems = check_map(register_map)
    steps, profile_problems = check_profile(load_json(args.profile))
    problems += profile_problems
    if args.transport == "tcp" and args.port is None:
        problems.append("--port is required for --transport tcp")
    if args.transport == "rtu" and args.device is None:
        problems.append("--device is required for --transport rtu")
    args.unit_ids, unit_problem = parse_unit_ids(args.unit_id)
    if unit_problem:
        problems.append(unit_problem)
    if problems:
        emit("error", message="; ".join(problems))
        return 2

    device = Device(args, register_map, Profile(steps, args.initial_total, args.initial_total_reverse))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, device.stopping.set)

    device.started = time.monotonic()
    device.write_tick()  # the registers hold the first values before anyone can ask
    if args.transport == "tcp":
        server = await StartAsyncTcpServer(
            context=device.context,
            address=(args.host, args.port),
            framer=ModbusSocketFramer,
            defer_start=True,
            allow_reuse_address=True,
            response_manipulator=device.manipulate,
        )
        serving = asyncio.create_task(server.serve_forever())
        await asyncio.wait([serving, server.serving], return_when=asyncio.FIRST_COMPLETED)
        if not server.serving.done():
            error = serving.exception() if serving.done() and not serving.cancelled() else None
            emit("error", message=f"cannot listen on {args.host}:{args.port}: {error}")
            return 2
        port = server.server.sockets[0].getsockname()[1]
        emit("listening", transport="tcp", port=port, unitId=device.unit_id, unitIds=device.unit_ids, pymodbus=pymodbus.__version__)
    else:
        # The framer must be named: StartAsyncSerialServer's default is ASCII, not RTU.
        server = await StartAsyncSerialServer(
            context=device.context,
            framer=ModbusRtuFramer,
            port=args.device,
            baudrate=args.baudrate,
            parity=args.parity,
            stopbits=args.stopbits,
            bytesize=8,
            defer_start=True,
            response_manipulator=device.manipulate,
        )
        try:
            await server.start()
        except Exception as error:  # pylint: disable=broad-except
            emit("error", message=f"cannot open {args.device}: {error}")
            return 2
        if server.transport is None:
            emit("error", message=f"cannot open {args.device}")
            return 2
        serving = None
        emit("listening", transport="rtu", device=args.device, baudRate=args.baudrate, parity=args.parity, unitId=device.unit_id, unitIds=device.unit_ids, pymodbus=pymodbus.__version__)

    read_commands(device)
    await device.tick_forever()
    await server.shutdown()
    if serving is not None:
        serving.cancel()
        try:
            await serving
        except (asyncio.CancelledError, Exception):  # pylint: disable=broad-except
            pass
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transport", choices=("tcp", "rtu"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--device")
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument("--parity", choices=("N", "E", "O"), default="N")
    parser.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    parser.add_argument("--unit-id", default="1", help="one unit id, or several: 1,2,5-8")
    parser.add_argument("--map", required=True, help="JSON, or @file")
    parser.add_argument("--profile", required=True, help="JSON, or @file")
    parser.add_argument("--initial-total", type=float, default=0.0)
    parser.add_argument("--initial-total-reverse", type=float, default=0.0)
    parser.add_argument("--tick-ms", type=float, default=100.0)
    parser.add_argument("--log-every-ms", type=float, default=1000.0)
    args = parser.parse_args()
    try:
        code = asyncio.run(run(args))
    except (json.JSONDecodeError, OSError) as error:
        emit("error", message=str(error))
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
