/**
 * The handshake that lets a second worker run `quick_check` on a rollback-journal database while the
 * first one serializes it, and be sure both saw the same database.
 *
 * In rollback-journal mode a commit needs an EXCLUSIVE lock, which no connection gets while another
 * holds SHARED. So two read transactions whose locks are held at the same moment see the same
 * committed state. The reader announces that it holds its lock (`HELD`); the checker takes its own
 * lock and then claims the overlap (`HELD → JOINED`); the reader, once its image is read, ends the
 * handshake (`→ CLOSED`) and learns whether the checker joined in time. The checker never waits while
 * holding its lock; the reader, once its image is read, waits a few milliseconds at most for a checker
 * that has not joined yet (a checker thread the writer's process kept off the CPU): less than it would
 * hold its lock to run the check itself, which is what it does when the checker is late.
 * (WAL readers block no writer and can see different moments: a WAL reader checks its own image.)
 * A second Int32 tells the reader when the check is over, so it can fill the wait with work of its own.
 */

/** Int32 0: WAITING → HELD → (JOINED) → CLOSED. Int32 1: 0 until the checker is done (CHECK_OVER). */
const WAITING = 0;
const HELD = 1;
const JOINED = 2;
const CLOSED = 3;
const CHECK_OVER = 1;

export function createHandshake(): SharedArrayBuffer {
  return new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
}

/** Reader: its read transaction has taken the shared lock; a checker may join from now on. */
export function announceHeld(handshake: SharedArrayBuffer): void {
  const state = new Int32Array(handshake);
  Atomics.compareExchange(state, 0, WAITING, HELD);
  Atomics.notify(state, 0);
}

/**
 * Reader, before it releases its lock (or gives up): ends the handshake. True when the checker took
 * its lock while ours was held, so its check describes our image; false when it did not and never will.
 * `graceMs`: first wait that long at most for a checker that has not joined yet (worker threads only:
 * it blocks the calling thread).
 */
export function closeHandshake(handshake: SharedArrayBuffer, graceMs = 0): boolean {
  const state = new Int32Array(handshake);
  if (graceMs > 0) Atomics.wait(state, 0, HELD, graceMs);
  for (;;) {
    const seen = Atomics.load(state, 0);
    if (seen === JOINED) return true;
    if (seen === CLOSED) return false;
    if (Atomics.compareExchange(state, 0, seen, CLOSED) === seen) {
      Atomics.notify(state, 0);
      return false;
    }
  }
}

/** Checker: waits (at most `timeoutMs`) until the reader holds its lock; false if it never will. */
export function waitForReader(handshake: SharedArrayBuffer, timeoutMs: number): boolean {
  const state = new Int32Array(handshake);
  Atomics.wait(state, 0, WAITING, timeoutMs);
  return Atomics.load(state, 0) === HELD;
}

/** Checker, holding its own lock: claims the overlap. False if the reader has already let go. */
export function join(handshake: SharedArrayBuffer): boolean {
  const state = new Int32Array(handshake);
  const joined = Atomics.compareExchange(state, 0, HELD, JOINED) === HELD;
  // A reader may be waiting for this (closeHandshake's grace).
  if (joined) Atomics.notify(state, 0);
  return joined;
}

/** Checker: its check is over (passed, failed or never started). */
export function checkOver(handshake: SharedArrayBuffer): void {
  Atomics.store(new Int32Array(handshake), 1, CHECK_OVER);
}

/** Reader: whether the checker is still at work. */
export function checkRunning(handshake: SharedArrayBuffer): boolean {
  return Atomics.load(new Int32Array(handshake), 1) !== CHECK_OVER;
}
