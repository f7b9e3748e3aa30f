import { describe, expect, it } from 'vitest';
import { parseMeterTopic, readingsTopic, statusTopic } from './topics.ts';

describe('meter topics', () => {
  it.each([
    ['meters/ALM-PS3-DUT1/readings', { meterId: 'ALM-PS3-DUT1', kind: 'readings' }],
    ['meters/m_1.a/status', { meterId: 'm_1.a', kind: 'status' }],
    ['meters/-bad/readings', null],
    ['meters/a/b/readings', null],
    ['meters/a/config', null],
    ['sensors/a/readings', null],
    [`meters/${'x'.repeat(65)}/readings`, null],
  ])('%s', (topic, expected) => {
    expect(parseMeterTopic(topic)).toEqual(expected);
  });

  it('builds the topics of a meter', () => {
    expect(readingsTopic('M1')).toBe('meters/M1/readings');
    expect(statusTopic('M1')).toBe('meters/M1/status');
  });
});
