/**
 * A database image's content digest: SHA-256 of the image with the header fields zeroed that SQLite
 * rewrites without changing any content. Restoring an archive online copies its pages into the live
 * file with SQLite's backup API, which then bumps the destination's file change counter (offset 24),
 * schema cookie (40, so other connections reload the schema) and version-valid-for number (92), and
 * stamps its own library version (96). The bytes differ from the archive's; the database does not.
 * Comparing this digest lets a dry run right after such a restore say `unchanged`. Everything else
 * counts, the journal mode bytes (18, 19) and the page size included.
 */
import { createHash, type Hash } from 'node:crypto';

/** [start, end) byte ranges of the 100-byte header that are zeroed before hashing. */
export const VOLATILE_HEADER_RANGES: readonly (readonly [number, number])[] = [
  [24, 28],
  [40, 44],
  [92, 100],
];

const HEADER_BYTES = 100;

/** Feeds an image in chunks of any size; `digest()` once at the end. */
export class ContentDigest {
  readonly #hash: Hash = createHash('sha256');
  #offset = 0;

  update(chunk: Uint8Array): void {
    if (this.#offset < HEADER_BYTES) {
      const head = Buffer.from(chunk.subarray(0, HEADER_BYTES - this.#offset));
      for (const [start, end] of VOLATILE_HEADER_RANGES) {
        const from = Math.max(0, start - this.#offset);
        const to = Math.min(head.length, end - this.#offset);
        if (from < to) head.fill(0, from, to);
      }
      this.#hash.update(head);
      this.#hash.update(chunk.subarray(head.length));
    } else {
      this.#hash.update(chunk);
    }
    this.#offset += chunk.length;
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

/** The content digest of a whole image in memory. */
export function contentDigest(image: Uint8Array): string {
  const digest = new ContentDigest();
  digest.update(image);
  return digest.digest();
}
