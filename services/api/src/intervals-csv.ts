import { createHash } from 'node:crypto';
import { pairedIntervalRecord } from '@flowpilot/metrics';
import type { PairedIntervals } from '@flowpilot/metrics';
import { csvRow } from './csv.ts';

/**
 * `intervals.csv` (SPEC sections 4 and 5): every paired interval of a test meter against its
 * reference over W, counted or excluded, with every field its accuracy figures are computed
 * from, so an evaluator can recompute each zone's and bin's error, MPE and exclusion counts in a
 * spreadsheet. Numbers are written in full (String(), shortest round-trip form); an unknown value
 * is an empty cell. The PDF prints the SHA-256 of exactly these bytes (intervalsCsvSha256).
 */
export const INTERVALS_CSV_HEADER = [
  'meter',
  'reference',
  'start',
  'end',
  'test_total_start_m3',
  'test_total_end_m3',
  'ref_total_start_m3',
  'ref_total_end_m3',
  'volume_test_m3',
  'volume_ref_m3',
  'error_pct',
  'ref_flow_start_m3h',
  'ref_flow_end_m3h',
  'temperature_c',
  'temperature_source',
  'zone',
  'bin',
  'mpe_pct',
  'excluded',
] as const;

const iso = (ms: number): string => new Date(ms).toISOString();

/** The CSV in chunks of up to `rowsPerChunk` rows (a month of minute intervals is ~43,000 rows): stream it, or hash it. */
export function* intervalsCsv(paired: PairedIntervals, rowsPerChunk = 2000): Generator<string> {
  let chunk = csvRow(INTERVALS_CSV_HEADER);
  let rows = 0;
  for (let k = 0; k < paired.length; k++) {
    const r = pairedIntervalRecord(paired, k);
    const error = r.volumeTestM3 !== null && r.volumeRefM3 !== null && r.volumeRefM3 > 0 ? ((r.volumeTestM3 - r.volumeRefM3) / r.volumeRefM3) * 100 : null;
    chunk += csvRow([
      paired.meterId,
      paired.referenceId,
      iso(r.startMs),
      iso(r.endMs),
      r.testStartM3,
      r.testEndM3,
      r.refStartM3,
      r.refEndM3,
      r.volumeTestM3,
      r.volumeRefM3,
      error,
      r.refFlowStartM3h,
      r.refFlowEndM3h,
      r.temperatureC,
      r.temperatureSource,
      r.zone,
      r.bin,
      r.mpePct,
      r.excluded,
    ]);
    if (++rows === rowsPerChunk) {
      yield chunk;
      chunk = '';
      rows = 0;
    }
  }
  if (chunk !== '') yield chunk;
}

/** SHA-256 (hex) of the bytes `GET /api/v1/meters/{id}/intervals.csv` sends for the same window. */
export function intervalsCsvSha256(paired: PairedIntervals): string {
  const hash = createHash('sha256');
  for (const chunk of intervalsCsv(paired)) hash.update(chunk, 'utf8');
  return hash.digest('hex');
}
