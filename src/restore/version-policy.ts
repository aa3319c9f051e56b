/**
 * Which application versions an archive may be restored into (docs/restore.md "Version policy").
 *
 * - No current version known (no `appVersion` option, no `<dataDir>/VERSION`): allowed.
 * - Both versions parse: an archive from a newer version is refused unless forced; the same or an
 *   older one is allowed (the application is expected to migrate old data forward, not back).
 * - Either does not parse: allowed only when both strings are identical; otherwise refused unless forced.
 *
 * "Parses" means semver-ish: an optional `v`, dot-separated numbers (any count; missing parts are 0,
 * so 1.2 = 1.2.0, and calendar versions such as 2024.10.1 work), an optional `-prerelease`
 * (ordered as in semver: 1.0.0-rc.1 < 1.0.0) and an optional `+build`, which is ignored.
 */

export interface ParsedVersion {
  numbers: bigint[];
  prerelease: string[];
}

export type VersionComparison = 'older' | 'same' | 'newer' | 'incomparable' | 'no-current';

export interface VersionDecision {
  /** The archive's VERSION. */
  archive: string;
  /** What it was compared with, or null when nothing was known. */
  current: string | null;
  currentSource: 'option' | 'data-dir' | 'none';
  /** The archive's version relative to the current one. */
  comparison: VersionComparison;
  allowed: boolean;
  /** True when only `force` allowed it. */
  forced: boolean;
  /** One sentence for people. */
  reason: string;
}

const VERSION_PATTERN = /^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$/;

export function parseVersion(text: string): ParsedVersion | null {
  const match = VERSION_PATTERN.exec(text.trim());
  if (match === null) return null;
  return {
    numbers: (match[1] ?? '').split('.').map((n) => BigInt(n)),
    prerelease: match[2] === undefined ? [] : match[2].split('.'),
  };
}

const sign = (n: number | bigint): -1 | 0 | 1 => (n < 0 ? -1 : n > 0 ? 1 : 0);

function comparePrerelease(a: readonly string[], b: readonly string[]): -1 | 0 | 1 {
  // A release is newer than any of its prereleases.
  if (a.length === 0 || b.length === 0) return sign(b.length - a.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    const xNum = /^\d+$/.test(x);
    const yNum = /^\d+$/.test(y);
    if (xNum && yNum) {
      const d = sign(BigInt(x) - BigInt(y));
      if (d !== 0) return d;
    } else if (xNum !== yNum) {
      return xNum ? -1 : 1; // numeric identifiers sort before alphanumeric ones
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return sign(a.length - b.length);
}

/** -1, 0 or 1 as `a` is older, the same or newer than `b`; null when either does not parse. */
export function compareVersions(a: string, b: string): -1 | 0 | 1 | null {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (x === null || y === null) return null;
  for (let i = 0; i < Math.max(x.numbers.length, y.numbers.length); i++) {
    const d = sign((x.numbers[i] ?? 0n) - (y.numbers[i] ?? 0n));
    if (d !== 0) return d;
  }
  return comparePrerelease(x.prerelease, y.prerelease);
}

export function decideVersion(archive: string, current: string | null, currentSource: VersionDecision['currentSource'], force: boolean): VersionDecision {
  const base = { archive, current, currentSource };
  if (current === null) {
    return { ...base, comparison: 'no-current', allowed: true, forced: false, reason: `archive version ${archive}; no current version to compare with` };
  }
  const where = currentSource === 'option' ? 'the running application' : 'the data directory';
  const order = archive.trim() === current.trim() ? 0 : compareVersions(archive, current);
  if (order === 0) return { ...base, comparison: 'same', allowed: true, forced: false, reason: `archive version ${archive} is the same as ${where}'s` };
  if (order === -1) {
    return { ...base, comparison: 'older', allowed: true, forced: false, reason: `archive version ${archive} is older than ${where}'s ${current}; the application is expected to migrate it` };
  }
  const comparison = order === 1 ? 'newer' : 'incomparable';
  const why =
    order === 1
      ? `archive version ${archive} is newer than ${where}'s ${current}`
      : `archive version ${JSON.stringify(archive)} cannot be compared with ${where}'s ${JSON.stringify(current)}`;
  return force
    ? { ...base, comparison, allowed: true, forced: true, reason: `${why}; restored anyway (force)` }
    : { ...base, comparison, allowed: false, forced: false, reason: `${why}; pass force (--force) to restore it anyway` };
}
