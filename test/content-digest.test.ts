import { describe, expect, test } from 'vitest';
import { ContentDigest, contentDigest, VOLATILE_HEADER_RANGES } from '../src/archive/content-digest.js';
import { randomBytes } from 'node:crypto';

describe('content digest of a database image', () => {
  test('is the same whatever the chunk sizes, including chunks that end inside the header', () => {
    const image = randomBytes(4096);
    const whole = contentDigest(image);
    for (const size of [1, 3, 7, 24, 25, 41, 99, 100, 101, 1000]) {
      const digest = new ContentDigest();
      for (let at = 0; at < image.length; at += size) digest.update(image.subarray(at, at + size));
      expect(digest.digest(), `chunks of ${size}`).toBe(whole);
    }
  });

  test('ignores exactly the change counter, schema cookie, version-valid-for and library version; any other byte counts', () => {
    const image = randomBytes(4096);
    const whole = contentDigest(image);
    const volatile = new Set(VOLATILE_HEADER_RANGES.flatMap(([from, to]) => Array.from({ length: to - from }, (_, i) => from + i)));
    expect([...volatile].sort((a, b) => a - b)).toEqual([24, 25, 26, 27, 40, 41, 42, 43, 92, 93, 94, 95, 96, 97, 98, 99]);
    for (const offset of [0, 16, 18, 19, 23, 24, 27, 28, 39, 40, 43, 44, 91, 92, 99, 100, 4095]) {
      const changed = Buffer.from(image);
      changed[offset] = changed[offset]! ^ 0xff;
      expect(contentDigest(changed) === whole, `byte ${offset}`).toBe(volatile.has(offset));
    }
    // The input is never modified.
    expect(contentDigest(image)).toBe(whole);
  });
});
