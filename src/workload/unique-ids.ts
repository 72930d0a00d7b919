/** Ids below this go in a bitset (at most 16 MiB); larger ones in a set. */
const BITSET_LIMIT = 2 ** 27;

/**
 * Remembers the request ids of a trace so a repeated one is refused: outputs (requests.csv, the
 * upstream files) are keyed by id, and two rows with one id would silently break joins on it.
 * Hand-written because a Set of ten million numbers costs hundreds of megabytes, and trace ids are
 * nearly always small consecutive integers, which a bitset holds in one bit each.
 */
export class UniqueIds {
  private bits = new Uint32Array(1024);
  private readonly large = new Set<number>();

  /** Records `id` (a non-negative integer); false when it was recorded before. */
  add(id: number): boolean {
    if (id >= BITSET_LIMIT) {
      if (this.large.has(id)) return false;
      this.large.add(id);
      return true;
    }
    const word = id >>> 5;
    if (word >= this.bits.length) {
      let length = this.bits.length;
      while (length <= word) length *= 2;
      const grown = new Uint32Array(length);
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (id & 31);
    if ((this.bits[word]! & mask) !== 0) return false;
    this.bits[word]! |= mask;
    return true;
  }
}
