import { describe, expect, it } from 'vitest';
import { influxdConfig } from './local-influx.ts';

describe('influxdConfig', () => {
  const text = influxdConfig('/var/tmp/fp "data"', 18086, 18088);

  it('binds HTTP and RPC to loopback on the given ports', () => {
    expect(text).toContain('bind-address = "127.0.0.1:18088"');
    expect(text).toMatch(/\[http\][^[]*bind-address = "127\.0\.0\.1:18086"/);
  });

  it('keeps meta, data and WAL under the data dir, quoted as TOML strings', () => {
    expect(text).toContain('dir = "/var/tmp/fp \\"data\\"/meta"');
    expect(text).toContain('dir = "/var/tmp/fp \\"data\\"/data"');
    expect(text).toContain('wal-dir = "/var/tmp/fp \\"data\\"/wal"');
  });

  it('turns reporting, HTTP and query logs off, and enables no UDP, graphite or similar', () => {
    expect(text).toContain('reporting-disabled = true');
    expect(text).toContain('log-enabled = false');
    expect(text).toContain('query-log-enabled = false');
    expect(text).not.toMatch(/udp|graphite|collectd|opentsdb/i);
  });
});
