import type { Duplex } from 'node:stream';

/**
 * A maximum MQTT packet size, enforced before a packet's body is buffered (SPEC section 8).
 * Neither Aedes nor mqtt-packet has one: the parser keeps reading a packet whose fixed header
 * announces up to 256 MiB [MQTT-2.2.3]. This scanner reads only the fixed headers of the byte
 * stream (type byte, then the 1–4 byte "remaining length") and skips bodies without looking
 * at them, so it costs a few operations per packet, not per byte.
 */
export interface PacketSizeLimits {
  /** The first packet (CONNECT, before authentication) may not announce more than this. */
  maxFirstPacketBytes: number;
  /** Every later packet. */
  maxPacketBytes: number;
}

export type PacketSizeViolation =
  | { kind: 'too_large'; packetIndex: number; announcedBytes: number; limitBytes: number }
  | { kind: 'malformed_length'; packetIndex: number };

type State = 'header' | 'length' | 'body';

/** Feeds bytes; returns the first violation, after which the connection must be closed. */
export function createPacketSizeScanner(limits: PacketSizeLimits) {
  let state: State = 'header';
  let packetIndex = 0;
  let length = 0;
  let multiplier = 1;
  let lengthBytes = 0;
  let bodyLeft = 0;

  return function feed(chunk: Uint8Array): PacketSizeViolation | null {
    let i = 0;
    while (i < chunk.length) {
      if (state === 'header') {
        i += 1;
        state = 'length';
        length = 0;
        multiplier = 1;
        lengthBytes = 0;
      } else if (state === 'length') {
        const byte = chunk[i++] as number;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        lengthBytes += 1;
        if (byte & 0x80) {
          // [MQTT-2.2.3]: the remaining length takes at most four bytes.
          if (lengthBytes >= 4) return { kind: 'malformed_length', packetIndex };
          continue;
        }
        const limitBytes = packetIndex === 0 ? limits.maxFirstPacketBytes : limits.maxPacketBytes;
        if (length > limitBytes) return { kind: 'too_large', packetIndex, announcedBytes: length, limitBytes };
        packetIndex += 1;
        bodyLeft = length;
        state = bodyLeft > 0 ? 'body' : 'header';
      } else {
        const take = Math.min(bodyLeft, chunk.length - i);
        i += take;
        bodyLeft -= take;
        if (bodyLeft === 0) state = 'header';
      }
    }
    return null;
  };
}

/**
 * Watches what a connection's reader (Aedes) takes from the socket and destroys the socket
 * at the first violation, so the parser never receives more than the chunk in hand.
 * A 'data' listener beside Aedes's 'readable' listener does not switch the stream to flowing
 * mode: Node emits 'data' for every chunk that `read()` hands out.
 */
export function guardPacketSizes(socket: Duplex, limits: PacketSizeLimits, onViolation: (violation: PacketSizeViolation) => void): void {
  const feed = createPacketSizeScanner(limits);
  const onData = (chunk: Buffer) => {
    const violation = feed(chunk);
    if (!violation) return;
    socket.off('data', onData);
    socket.destroy();
    onViolation(violation);
  };
  socket.on('data', onData);
}
