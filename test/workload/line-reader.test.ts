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

  void it("reads .gz files", () => {
    const gz = writeFixture(dir, "lines.txt.gz", gzipSync(content));
    assert.deepEqual(readAll(gz), expected);
    assert.deepEqual(readAll(gz, 3), expected);
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
