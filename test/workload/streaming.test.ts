import assert from "node:assert/strict";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { AzureTraceReader, SplitwiseTraceReader } from "../../src/workload/index.ts";
import { tempDir } from "./helpers.ts";

const ROWS = 1_000_000;
const dir = tempDir();

/** Writes `rows` lines produced by `row(i)` after `header`, in 64k-line batches. */
function writeLargeFile(name: string, header: string, row: (index: number) => string): string {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  try {
    writeSync(fd, header);
    const batch: string[] = [];
    for (let i = 0; i < ROWS; i++) {
      batch.push(row(i));
      if (batch.length === 65_536 || i === ROWS - 1) {
        writeSync(fd, batch.join("\n") + "\n");
        batch.length = 0;
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

void describe("streaming", () => {
  void it("reads a million-row splitwise trace one request at a time (count and sums)", () => {
    const path = writeLargeFile(
      "million-splitwise.csv",
      "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size\n",
      (i) => `${i},2,0,${(i * 0.001).toFixed(3)},1,${(i % 1000) + 1},${(i % 7) + 1}`,
    );
    const source = new SplitwiseTraceReader(path);
    let count = 0;
    let promptSum = 0;
    let outputSum = 0;
    let lastArrival = 0;
    for (let request = source.next(); request !== undefined; request = source.next()) {
      count++;
      promptSum += request.prompt_tokens;
      outputSum += request.output_tokens;
      lastArrival = request.arrival_s;
    }
    let expectedPrompt = 0;
    let expectedOutput = 0;
    for (let i = 0; i < ROWS; i++) {
      expectedPrompt += (i % 1000) + 1;
      expectedOutput += (i % 7) + 1;
    }
    assert.equal(count, ROWS);
    assert.equal(promptSum, expectedPrompt);
    assert.equal(outputSum, expectedOutput);
    assert.ok(Math.abs(lastArrival - (ROWS - 1) * 0.001) < 1e-9);
  });

  void it("reads a million-row Azure trace across day boundaries", () => {
    const start = Date.UTC(2023, 10, 16, 23, 0, 0);
    const path = writeLargeFile("million-azure.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n", (i) => {
      // One request every 10 ms, crossing midnight after 360,000 rows.
      const iso = new Date(start + i * 10).toISOString();
      return `${iso.slice(0, 10)} ${iso.slice(11, 23)}0000,${(i % 500) + 1},1`;
    });
    const source = new AzureTraceReader(path, { chunkSize: 65_536 });
    let count = 0;
    let promptSum = 0;
    let maxError = 0;
    for (let request = source.next(); request !== undefined; request = source.next()) {
      maxError = Math.max(maxError, Math.abs(request.arrival_s - request.id * 0.01));
      promptSum += request.prompt_tokens;
      count++;
    }
    assert.equal(count, ROWS);
    assert.equal(promptSum, 500 * 501 * 1000);
    assert.ok(maxError < 1e-9, `${maxError}`);
  });
});
