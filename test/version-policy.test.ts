/** The version rules docs/restore.md states, one by one. */
import { describe, expect, test } from 'vitest';
import { compareVersions, decideVersion, parseVersion } from '../src/restore/version-policy.js';

describe('comparing versions', () => {
  test.each([
    ['1.2.0', '1.10.0', -1],
    ['v1.2.3', '1.2.3', 0],
    ['1.2', '1.2.0', 0],
    ['1', '1.0.0.0', 0],
    ['2024.10.1', '2024.9.30', 1],
    ['1.0.0-rc.1', '1.0.0', -1],
    ['1.0.0-alpha', '1.0.0-alpha.1', -1],
    ['1.0.0-alpha.1', '1.0.0-alpha.beta', -1],
    ['1.0.0-beta.2', '1.0.0-beta.11', -1],
    ['1.0.0-rc.1', '1.0.0-beta.11', 1],
    ['1.0.0+build.7', '1.0.0+build.9', 0],
    ['99999999999999999999.0', '99999999999999999998.9', 1],
  ])('%s against %s is %i', (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
    expect(compareVersions(b, a)).toBe(-expected || 0);
  });

  test.each(['', 'latest', '1.2.x', '1..2', 'v', '1.2.3-', 'release 1.2'])('"%s" does not parse', (text) => {
    expect(parseVersion(text)).toBeNull();
    expect(compareVersions(text, '1.0.0')).toBeNull();
  });
});

describe('deciding a restore', () => {
  test('an archive from a newer version is refused unless forced', () => {
    expect(decideVersion('2.0.0', '1.9.0', 'data-dir', false)).toMatchObject({ comparison: 'newer', allowed: false, forced: false });
    expect(decideVersion('2.0.0', '1.9.0', 'data-dir', false).reason).toContain('pass force (--force)');
    expect(decideVersion('2.0.0', '1.9.0', 'data-dir', true)).toMatchObject({ comparison: 'newer', allowed: true, forced: true });
  });

  test('the same or an older version is allowed', () => {
    expect(decideVersion('1.9.0', '1.9', 'option', false)).toMatchObject({ comparison: 'same', allowed: true, forced: false });
    expect(decideVersion('1.8.9', '1.9.0', 'option', false)).toMatchObject({ comparison: 'older', allowed: true, forced: false });
  });

  test('a version that does not parse is allowed only when both strings are identical', () => {
    expect(decideVersion('nightly-abc', 'nightly-abc', 'data-dir', false)).toMatchObject({ comparison: 'same', allowed: true });
    expect(decideVersion('nightly-abc', 'nightly-abd', 'data-dir', false)).toMatchObject({ comparison: 'incomparable', allowed: false });
    expect(decideVersion('nightly-abc', '1.0.0', 'data-dir', true)).toMatchObject({ comparison: 'incomparable', allowed: true, forced: true });
  });

  test('with no current version (a fresh data directory) anything is allowed', () => {
    expect(decideVersion('9.9.9', null, 'none', false)).toMatchObject({ comparison: 'no-current', allowed: true, forced: false });
  });
});
