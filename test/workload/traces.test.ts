import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { AZURE_CODE_TRACE, AZURE_CONV_TRACE } from "../../src/paths.ts";
import {
  AzureTraceReader,
  MooncakeTraceReader,
  SplitwiseTraceReader,
  WorkloadError,
  detectTraceFormat,
  openTrace,
  openWorkload,
  readAllRequests,
} from "../../src/workload/index.ts";
import { TimestampParser } from "../../src/workload/azure.ts";
import { SPLITWISE_REFERENCE } from "../fixtures/reference.ts";
import { tempDir, writeFixture } from "./helpers.ts";

const REFERENCE_TRACES = join(SPLITWISE_REFERENCE, "traces");
const AZURE_CONV_REPLAY = `${REFERENCE_TRACES}/azure_conv_replay.csv`;
const TEST_TRACE = `${REFERENCE_TRACES}/test_trace.csv`;

const dir = tempDir();

void describe("Azure LLM inference traces", () => {
  void it("with offset_s 1 reproduces the reference simulator's replay of the conv trace (all 19,366 rows)", () => {
    const ours = readAllRequests(new AzureTraceReader(AZURE_CONV_TRACE, { offset_s: 1 }));
    const reference = readAllRequests(new SplitwiseTraceReader(AZURE_CONV_REPLAY));
    assert.equal(ours.length, 19_366);
    assert.equal(reference.length, 19_366);
    for (let i = 0; i < ours.length; i++) {
      const mine = ours[i]!;
      const theirs = reference[i]!;
      assert.equal(mine.id, theirs.id, `row ${i} id`);
      assert.ok(
        Math.abs(mine.arrival_s - theirs.arrival_s) <= 1e-9,
        `row ${i}: ${mine.arrival_s} vs ${theirs.arrival_s}`,
      );
      assert.equal(mine.prompt_tokens, theirs.prompt_tokens, `row ${i} prompt`);
      assert.equal(mine.output_tokens, theirs.output_tokens, `row ${i} output`);
    }
  });

  void it("starts at offset_s (default 0) and keeps sub-millisecond precision", () => {
    const path = writeFixture(
      dir,
      "azure.csv",
      "TIMESTAMP,ContextTokens,GeneratedTokens\n" +
        "2023-11-16 23:59:59.9999999,10,2\n" +
        "2023-11-17 00:00:00.0000001,20,3\n" +
        "2023-11-17 00:00:01.5,30,4\n",
    );
    const requests = readAllRequests(new AzureTraceReader(path));
    assert.deepEqual(
      requests.map((request) => request.id),
      [0, 1, 2],
    );
    assert.equal(requests[0]!.arrival_s, 0);
    assert.ok(Math.abs(requests[1]!.arrival_s - 2e-7) < 1e-12);
    assert.ok(Math.abs(requests[2]!.arrival_s - 1.5000001) < 1e-12);
    assert.deepEqual(
      requests.map((request) => [request.prompt_tokens, request.output_tokens]),
      [
        [10, 2],
        [20, 3],
        [30, 4],
      ],
    );
  });

  void it("accepts the 2024 week-long trace format (time zone suffix, 6 digits) and columns in any order", () => {
    const path = writeFixture(
      dir,
      "azure2024.csv",
      "GeneratedTokens,TIMESTAMP,ContextTokens\r\n" +
        "5,2024-05-10 00:00:00.009930+00:00,2162\r\n" +
        "7,2024-05-10 00:00:01.509930+00:00,100\r\n" +
        "9,2024-05-10 02:00:02.009930+02:00,100\r\n",
    );
    const requests = readAllRequests(openTrace(path));
    assert.deepEqual(
      requests.map((request) => [request.arrival_s, request.prompt_tokens, request.output_tokens]),
      [
        [0, 2162, 5],
        [1.5, 100, 7],
        [2, 100, 9],
      ],
    );
  });

  void it("parses timestamps to full precision", () => {
    const parser = new TimestampParser();
    const text = "2023-11-16 18:15:46.6805900";
    assert.ok(parser.parse(text, 0, text.length));
    assert.equal(parser.seconds, Date.UTC(2023, 10, 16, 18, 15, 46) / 1000);
    assert.equal(parser.fraction, 0.68059);
    for (const bad of [
      "2023-11-16",
      "2023-11-16 18:15:46.",
      "2023/11/16 18:15:46",
      "2023-13-16 18:15:46",
      "2023-11-16 18:15:46+1",
      "2023-02-29 18:15:46", // not a leap year: Date.UTC would roll it over to 1 March
      "2023-04-31 00:00:00",
    ]) {
      assert.equal(parser.parse(bad, 0, bad.length), false, bad);
    }
    const zulu = "2023-11-16T18:15:46Z";
    assert.ok(parser.parse(zulu, 0, zulu.length));
    assert.equal(parser.fraction, 0);
    const utc = parser.seconds;
    // ±HH, ±HHMM and ±HH:MM zones name the same instant.
    for (const zoned of ["2023-11-16T23:15:46+05", "2023-11-16T23:15:46+0500", "2023-11-16T23:15:46+05:00"]) {
      assert.ok(parser.parse(zoned, 0, zoned.length), zoned);
      assert.equal(parser.seconds, utc, zoned);
    }
    const leap = "2024-02-29 12:00:00";
    assert.ok(parser.parse(leap, 0, leap.length), "2024 is a leap year");
  });

  void it("gives the same requests with tiny read chunks (rows split across chunk seams)", () => {
    const expected = readAllRequests(new AzureTraceReader(AZURE_CONV_TRACE, { limit: 3000 }));
    for (const chunkSize of [1, 7, 64]) {
      assert.deepEqual(
        readAllRequests(new AzureTraceReader(AZURE_CONV_TRACE, { limit: 3000, chunkSize })),
        expected,
      );
    }
  });

  void it("reads the bundled code trace", () => {
    const requests = readAllRequests(new AzureTraceReader(AZURE_CODE_TRACE, { limit: 100 }));
    assert.equal(requests.length, 100);
    for (let i = 1; i < requests.length; i++) assert.ok(requests[i]!.arrival_s >= requests[i - 1]!.arrival_s);
  });

  void it("reads a gzipped trace", () => {
    const path = writeFixture(
      dir,
      "azure.csv.gz",
      gzipSync("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"),
    );
    assert.equal(detectTraceFormat(path), "azure");
    assert.deepEqual(readAllRequests(openTrace(path)), [
      { id: 0, arrival_s: 0, prompt_tokens: 374, output_tokens: 44 },
    ]);
  });
});

void describe("splitwise-sim traces", () => {
  void it("reads upstream's 3-row test trace", () => {
    assert.equal(detectTraceFormat(TEST_TRACE), "splitwise");
    assert.deepEqual(readAllRequests(openTrace(TEST_TRACE)), [
      { id: 0, arrival_s: 1, prompt_tokens: 4096, output_tokens: 32 },
      { id: 1, arrival_s: 3, prompt_tokens: 2048, output_tokens: 8 },
      { id: 2, arrival_s: 4, prompt_tokens: 2048, output_tokens: 16 },
    ]);
  });

  void it("accepts floats, an optional workload_type column, and no request_id (ids are row indices)", () => {
    const path = writeFixture(
      dir,
      "floats.csv",
      "arrival_timestamp,prompt_size,token_size,workload_type\n0.0,4096.0,32.0,conv\n\n1.25,10,1,code\n",
    );
    assert.deepEqual(readAllRequests(new SplitwiseTraceReader(path)), [
      { id: 0, arrival_s: 0, prompt_tokens: 4096, output_tokens: 32 },
      { id: 1, arrival_s: 1.25, prompt_tokens: 10, output_tokens: 1 },
    ]);
  });
});

void describe("Mooncake traces", () => {
  void it("reads JSON Lines with ms timestamps and hash ids", () => {
    const path = writeFixture(
      dir,
      "mooncake.jsonl",
      '{"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47]}\n\n' +
        '{"timestamp": 2500, "input_length": 10, "output_length": 1, "hash_ids": []}\n' +
        '{"timestamp": 2501, "input_length": 11, "output_length": 2}\n',
    );
    assert.equal(detectTraceFormat(path), "mooncake");
    const requests = readAllRequests(new MooncakeTraceReader(path, { offset_s: 1 }));
    assert.deepEqual(requests, [
      { id: 0, arrival_s: 1, prompt_tokens: 6955, output_tokens: 52, hash_ids: [46, 47] },
      { id: 1, arrival_s: 3.5, prompt_tokens: 10, output_tokens: 1, hash_ids: [] },
      { id: 2, arrival_s: 3.501, prompt_tokens: 11, output_tokens: 2 },
    ]);
  });
});

void describe("detectTraceFormat", () => {
  void it("detects by extension and header", () => {
    assert.equal(detectTraceFormat(AZURE_CONV_TRACE), "azure");
    assert.equal(detectTraceFormat(writeFixture(dir, "noext", '\n{"timestamp": 1}\n')), "mooncake");
    assert.equal(
      detectTraceFormat(writeFixture(dir, "sw.csv", "request_id,arrival_timestamp,prompt_size,token_size\n")),
      "splitwise",
    );
  });

  void it("lists the supported formats when it cannot tell", () => {
    const path = writeFixture(dir, "unknown.csv", "time,prompt,output\n1,2,3\n");
    assert.throws(
      () => detectTraceFormat(path),
      (error: unknown) =>
        error instanceof WorkloadError &&
        error.file === path &&
        error.line === 1 &&
        /azure \(CSV with columns TIMESTAMP,ContextTokens,GeneratedTokens\)/.test(error.message) &&
        /splitwise/.test(error.message) &&
        /mooncake/.test(error.message),
    );
    assert.throws(() => detectTraceFormat(writeFixture(dir, "empty.csv", "\n\n")), /empty/);
  });
});

void describe("trace options", () => {
  // Raw times 0, 1, 2, ..., 9 s.
  const path = writeFixture(
    dir,
    "ten.csv",
    "request_id,arrival_timestamp,prompt_size,token_size\n" +
      Array.from({ length: 10 }, (_, i) => `${i},${i},${100 + i},${i + 1}`).join("\n"),
  );
  const arrivals = (options: Parameters<typeof openTrace>[2]): number[] =>
    readAllRequests(openTrace(path, "splitwise", options)).map((request) => request.arrival_s);
  const ids = (options: Parameters<typeof openTrace>[2]): number[] =>
    readAllRequests(openTrace(path, "splitwise", options)).map((request) => request.id);

  void it("offset_s shifts every arrival", () => {
    assert.deepEqual(arrivals({ offset_s: 5, limit: 3 }), [5, 6, 7]);
  });

  void it("limit caps the number of requests", () => {
    assert.equal(arrivals({ limit: 4 }).length, 4);
    assert.deepEqual(arrivals({ limit: 0 }), []);
  });

  void it("time_scale multiplies the gaps", () => {
    assert.deepEqual(arrivals({ time_scale: 0.5, limit: 4 }), [0, 0.5, 1, 1.5]);
    assert.deepEqual(arrivals({ time_scale: 2, offset_s: 1, limit: 3 }), [1, 3, 5]);
  });

  void it("start_s/end_s keep the window [start_s, end_s) and re-base it to offset_s", () => {
    assert.deepEqual(ids({ start_s: 3, end_s: 6 }), [3, 4, 5]);
    assert.deepEqual(arrivals({ start_s: 3, end_s: 6 }), [0, 1, 2]);
    assert.deepEqual(arrivals({ start_s: 2.5, end_s: 6, offset_s: 10, time_scale: 2 }), [11, 13, 15]);
    assert.deepEqual(ids({ start_s: 8, limit: 1 }), [8]);
  });

  void it("openWorkload applies the spec's options and resolves relative paths against baseDir", () => {
    const requests = readAllRequests(
      openWorkload(
        { type: "trace", path: "ten.csv", offset_s: 1, time_scale: 0.5, start_s: 4, end_s: 8, limit: 3 },
        dir,
      ),
    );
    assert.deepEqual(
      requests.map((request) => [request.id, request.arrival_s]),
      [
        [4, 1],
        [5, 1.5],
        [6, 2],
      ],
    );
  });

  void it("rejects nonsensical options", () => {
    assert.throws(() => openTrace(path, "splitwise", { time_scale: 0 }), /time_scale/);
    assert.throws(() => openTrace(path, "splitwise", { limit: -1 }), /limit/);
    assert.throws(() => openTrace(path, "splitwise", { start_s: 5, end_s: 5 }), /end_s/);
  });
});
