import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { LineReader } from "../../src/workload/line-reader.ts";
import { WorkloadError } from "../../src/workload/errors.ts";
import { tempDir, writeFixture } from "./helpers.ts";

const dir = tempDir();

function readAll(path: string, chunkSize?: number): [number, string][] {
  return [...new LineReader(path, chunkSize === undefined ? {} : { chunkSize })].map(([line, text]) => [
    line,
    text,
  ]);
}

void describe("LineReader", () => {
  const content =
    "alpha,1\r\nbeta,22\n\ngamma — é😀,333\r\n" + "x".repeat(50) + "\nlast line without newline";
  const expected: [number, string][] = [
    [1, "alpha,1"],
    [2, "beta,22"],
    [3, ""],
    [4, "gamma — é😀,333"],
    [5, "x".repeat(50)],
    [6, "last line without newline"],
  ];
  const path = writeFixture(dir, "lines.txt", content);

  void it("splits lines with \\n and \\r\\n endings and keeps a last line without newline", () => {
    assert.deepEqual(readAll(path), expected);
  });

  void it("gives the same lines for every chunk size (lines, \\r\\n and UTF-8 characters across chunk seams)", () => {
    for (let chunkSize = 1; chunkSize <= 24; chunkSize++) {
      assert.deepEqual(readAll(path, chunkSize), expected, `chunkSize ${chunkSize}`);
    }
  });

  void it("does not invent a line after a final newline", () => {
    const withNewline = writeFixture(dir, "final-newline.txt", "a\nb\n");
    assert.deepEqual(readAll(withNewline, 1), [
      [1, "a"],
      [2, "b"],
    ]);
    assert.deepEqual(readAll(writeFixture(dir, "empty.txt", "")), []);
  });

  void it("strips a byte-order mark", () => {
    const bom = writeFixture(dir, "bom.csv", "\uFEFFTIMESTAMP,x\n1,2\n");
    assert.deepEqual(readAll(bom, 2), [
      [1, "TIMESTAMP,x"],
      [2, "1,2"],
    ]);
  });

  void it("reads .gz files, for every chunk size and across gzip members", () => {
    const gz = writeFixture(dir, "lines.txt.gz", gzipSync(content));
    assert.deepEqual(readAll(gz), expected);
    for (let chunkSize = 1; chunkSize <= 24; chunkSize++) {
      assert.deepEqual(readAll(gz, chunkSize), expected, `chunkSize ${chunkSize}`);
    }
    // `cat a.gz b.gz > c.gz` is a valid gzip file of both parts (what gzip -d and zcat read).
    const seam = content.indexOf("é");
    const members = Buffer.concat([gzipSync(content.slice(0, seam)), gzipSync(content.slice(seam))]);
    const concatenated = writeFixture(dir, "members.txt.gz", members);
    assert.deepEqual(readAll(concatenated), expected);
    // Every chunk size up to past the first member's end: one of them ends a chunk exactly where the
    // first member ends, after which the inflater reports the stream ended (the second was lost).
    for (let chunkSize = 1; chunkSize <= members.length; chunkSize++) {
      assert.deepEqual(readAll(concatenated, chunkSize), expected, `chunkSize ${chunkSize}`);
    }
  });

  void it("streams a .gz file: lines before a damaged end are read before the error", () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => `${i},${(i * 7919) % 1000}`);
    const packed = gzipSync(`${rows.join("\n")}\n`);
    const corrupt = Buffer.from(packed);
    corrupt[corrupt.length - 6]! ^= 0xff; // inside the CRC-32 trailer
    const reader = new LineReader(writeFixture(dir, "corrupt-crc.csv.gz", corrupt), { chunkSize: 256 });
    assert.equal(reader.readLine(), "0,0");
    assert.equal(reader.readLine(), "1,919");
    assert.throws(
      () => {
        while (reader.readLine() !== undefined);
      },
      (error: unknown) =>
        error instanceof WorkloadError &&
        error.file.endsWith("corrupt-crc.csv.gz") &&
        /cannot decompress the gzip data: incorrect data check/.test(error.message),
    );
  });

  void it("refuses a truncated or non-gzip .gz file instead of returning a short trace", () => {
    const packed = gzipSync("a,1\nb,2\n".repeat(5_000));
    for (const cut of [4, 9, 40, packed.length >> 1]) {
      const truncated = writeFixture(dir, `truncated-${cut}.csv.gz`, packed.subarray(0, packed.length - cut));
      assert.throws(
        () => readAll(truncated),
        (error: unknown) =>
          error instanceof WorkloadError && /ends early \(the file is truncated\)/.test(error.message),
        `cut ${cut}`,
      );
    }
    const plain = writeFixture(dir, "plain.csv.gz", "TIMESTAMP,ContextTokens,GeneratedTokens\n");
    assert.throws(
      () => readAll(plain),
      (error: unknown) =>
        error instanceof WorkloadError &&
        /cannot decompress the gzip data: incorrect header check/.test(error.message),
    );
  });

  void it("reports a missing file as a WorkloadError naming it", () => {
    assert.throws(
      () => new LineReader(`${dir}/missing.csv`),
      (error: unknown) =>
        error instanceof WorkloadError &&
        error.file === `${dir}/missing.csv` &&
        /cannot read file/.test(error.message),
    );
  });

  void it("returns undefined after close and closes idempotently", () => {
    const reader = new LineReader(path, { chunkSize: 4 });
    assert.equal(reader.readLine(), "alpha,1");
    reader.close();
    reader.close();
    // What was already decoded may still come out, but reading stops without touching the closed file.
    let count = 0;
    while (reader.readLine() !== undefined) count++;
    assert.ok(count <= 1);
  });
});
