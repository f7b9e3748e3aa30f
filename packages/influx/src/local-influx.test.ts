import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { influxdConfig, prepareInfluxDataDirs } from './local-influx.ts';

describe('prepareInfluxDataDirs', () => {
  it('creates the data dir and its meta, data and WAL folders 0700, tightening ones an earlier run left 0755', () => {
    const root = mkdtempSync(join(tmpdir(), 'fp-influx-dirs-'));
    try {
      const dataDir = join(root, 'influxdb');
      mkdirSync(join(dataDir, 'data'), { recursive: true });
      chmodSync(dataDir, 0o755);
      chmodSync(join(dataDir, 'data'), 0o755);
      prepareInfluxDataDirs(dataDir);
      for (const name of ['', 'meta', 'data', 'wal']) expect(statSync(join(dataDir, name)).mode & 0o777, name).toBe(0o700);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

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
