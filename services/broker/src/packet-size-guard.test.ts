import { describe, expect, it } from 'vitest';
import { createPacketSizeScanner } from './packet-size-guard.ts';

const limits = { maxFirstPacketBytes: 100, maxPacketBytes: 1000 };

describe('packet size scanner', () => {
  it('passes packets within the limits, split anywhere across chunks', () => {
    // CONNECT of 100 bytes, PUBLISH of 1000 (remaining length 0xe8 0x07), PINGREQ (0 bytes).
    const stream = Buffer.concat([Buffer.from([0x10, 100]), Buffer.alloc(100), Buffer.from([0x30, 0xe8, 0x07]), Buffer.alloc(1000), Buffer.from([0xc0, 0x00])]);
    for (const size of [1, 2, 7, 64, stream.length]) {
      const feed = createPacketSizeScanner(limits);
      for (let i = 0; i < stream.length; i += size) expect(feed(stream.subarray(i, i + size))).toBeNull();
    }
  });

  it('flags a first packet over the pre-login limit from its header alone', () => {
    const feed = createPacketSizeScanner(limits);
    expect(feed(Buffer.from([0x10, 101]))).toEqual({ kind: 'too_large', packetIndex: 0, announcedBytes: 101, limitBytes: 100 });
  });

  it('flags a later packet over the packet limit (268,435,455 bytes announced)', () => {
    const feed = createPacketSizeScanner(limits);
    expect(feed(Buffer.concat([Buffer.from([0x10, 2]), Buffer.alloc(2)]))).toBeNull();
    expect(feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))).toEqual({ kind: 'too_large', packetIndex: 1, announcedBytes: 268_435_455, limitBytes: 1000 });
  });

  it('flags a remaining length longer than four bytes [MQTT-2.2.3]', () => {
    const feed = createPacketSizeScanner(limits);
    expect(feed(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x01]))).toEqual({ kind: 'malformed_length', packetIndex: 0 });
  });
});
