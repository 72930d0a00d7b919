import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WorkloadError, openTrace, readAllRequests, type TraceFormat } from "../../src/workload/index.ts";
import { UniqueIds } from "../../src/workload/unique-ids.ts";
import { tempDir, writeFixture } from "./helpers.ts";

const dir = tempDir();
const AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
const AZURE_OK = "2023-11-16 18:15:46.6805900,374,44\n";
const SPLITWISE_HEADER =
  "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size\n";

interface BadRow {
  readonly name: string;
  readonly format: TraceFormat;
  readonly content: string;
  readonly line: number;
  readonly field: string;
  readonly message: RegExp;
}

const cases: BadRow[] = [
  {
    name: "non-numeric prompt",
    format: "azure",
    content: AZURE_HEADER + AZURE_OK + "2023-11-16 18:15:47.0,abc,44\n",
    line: 3,
    field: "ContextTokens",
    message: /expected a positive integer, got "abc"/,
  },
  {
    name: "empty output",
    format: "azure",
    content: AZURE_HEADER + "2023-11-16 18:15:47.0,12,\n",
    line: 2,
    field: "GeneratedTokens",
    message: /expected a positive integer, got ""/,
  },
  {
    name: "prompt 0",
    format: "azure",
    content: AZURE_HEADER + AZURE_OK + "\n2023-11-16 18:15:47.0,0,44\n",
    line: 4,
    field: "ContextTokens",
    message: /got "0": a request needs at least one prompt token/,
  },
  {
    name: "output 0",
    format: "azure",
    content: AZURE_HEADER + "2023-11-16 18:15:47.0,10,0\n",
    line: 2,
    field: "GeneratedTokens",
    message: /got "0": every request generates at least one token/,
  },
  {
    name: "fractional tokens",
    format: "splitwise",
    content: SPLITWISE_HEADER + "0,2,0,1.0,1,12.5,3\n",
    line: 2,
    field: "prompt_size",
    message: /expected a positive integer, got "12.5"/,
  },
  {
    name: "bad timestamp",
    format: "azure",
    content: AZURE_HEADER + AZURE_OK + "yesterday,1,1\n",
    line: 3,
    field: "TIMESTAMP",
    message: /expected a timestamp like "2023-11-16 18:15:46.6805900", got "yesterday"/,
  },
  {
    name: "Azure arrival going backwards",
    format: "azure",
    content: AZURE_HEADER + AZURE_OK + "2023-11-16 18:15:47.0,1,1\n2023-11-16 18:15:46.0,1,1\n",
    line: 4,
    field: "TIMESTAMP",
    message:
      /goes backwards \(-0\.68059 s after 0\.31941 s on line 3, in seconds from the first row\).*non-decreasing arrival order.*sort the trace/,
  },
  {
    name: "splitwise arrival going backwards",
    format: "splitwise",
    content: SPLITWISE_HEADER + "0,2,0,5.0,1,10,3\n1,2,0,4.5,1,10,3\n",
    line: 3,
    field: "arrival_timestamp",
    message: /goes backwards \(4\.5 s after 5 s on line 2\).*sort the trace by arrival time/,
  },
  {
    name: "negative arrival",
    format: "splitwise",
    content: SPLITWISE_HEADER + "0,2,0,-1,1,10,3\n",
    line: 2,
    field: "arrival_timestamp",
    message: /must not be negative/,
  },
  {
    name: "non-finite arrival",
    format: "splitwise",
    content: SPLITWISE_HEADER + "0,2,0,Infinity,1,10,3\n",
    line: 2,
    field: "arrival_timestamp",
    message: /expected a finite number, got "Infinity"/,
  },
  {
    name: "non-numeric arrival",
    format: "splitwise",
    content: SPLITWISE_HEADER + "0,2,0,soon,1,10,3\n",
    line: 2,
    field: "arrival_timestamp",
    message: /expected a number, got "soon"/,
  },
  {
    name: "bad request id",
    format: "splitwise",
    content: SPLITWISE_HEADER + "x,2,0,1,1,10,3\n",
    line: 2,
    field: "request_id",
    message: /expected a non-negative integer, got "x"/,
  },
  {
    name: "short row",
    format: "splitwise",
    content: SPLITWISE_HEADER + "0,2,0,1,1,10\n",
    line: 2,
    field: "token_size",
    message: /missing value: the line has 6 columns/,
  },
  {
    name: "Mooncake output 0",
    format: "mooncake",
    content:
      '{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": 1, "input_length": 5, "output_length": 0}\n',
    line: 2,
    field: "output_length",
    message: /field "output_length": expected a positive integer, got 0: every request/,
  },
  {
    name: "Mooncake string length",
    format: "mooncake",
    content: '{"timestamp": 0, "input_length": "5", "output_length": 1}\n',
    line: 1,
    field: "input_length",
    message: /expected a positive integer, got "5"/,
  },
  {
    name: "Mooncake missing timestamp",
    format: "mooncake",
    content: '\n{"input_length": 5, "output_length": 1}\n',
    line: 2,
    field: "timestamp",
    message: /expected a number of milliseconds, got nothing/,
  },
  {
    name: "Mooncake backwards",
    format: "mooncake",
    content:
      '{"timestamp": 10, "input_length": 5, "output_length": 1}\n{"timestamp": 9, "input_length": 5, "output_length": 1}\n',
    line: 2,
    field: "timestamp",
    message: /goes backwards/,
  },
  {
    name: "splitwise request_id repeated",
    format: "splitwise",
    content: SPLITWISE_HEADER + "7,2,0,1.0,1,10,2\n8,2,0,1.5,1,10,2\n7,2,0,2.0,1,10,2\n",
    line: 4,
    field: "request_id",
    message: /request_id 7 appears twice; ids must be unique/,
  },
  {
    name: "splitwise request_id repeated, large ids",
    format: "splitwise",
    content: SPLITWISE_HEADER + "3000000000,2,0,1.0,1,10,2\n5,2,0,1.5,1,10,2\n3000000000,2,0,2.0,1,10,2\n",
    line: 4,
    field: "request_id",
    message: /request_id 3000000000 appears twice/,
  },
  {
    name: "Mooncake bad hash ids",
    format: "mooncake",
    content: '{"timestamp": 10, "input_length": 5, "output_length": 1, "hash_ids": [1, "a"]}\n',
    line: 1,
    field: "hash_ids",
    message: /expected an array of integers/,
  },
];

void describe("validation errors name the file, line and column", () => {
  for (const [index, bad] of cases.entries()) {
    void it(bad.name, () => {
      const path = writeFixture(
        dir,
        `bad-${index}.${bad.format === "mooncake" ? "jsonl" : "csv"}`,
        bad.content,
      );
      const source = openTrace(path, bad.format);
      assert.throws(
        () => readAllRequests(source),
        (error: unknown) => {
          assert.ok(error instanceof WorkloadError, String(error));
          assert.equal(error.file, path);
          assert.equal(error.line, bad.line);
          assert.equal(error.field, bad.field);
          const kind = bad.format === "mooncake" ? "field" : "column";
          assert.ok(error.message.startsWith(`${path}:${bad.line}: ${kind} "${bad.field}": `), error.message);
          assert.match(error.message, bad.message);
          return true;
        },
      );
      // The reader closed itself on the error.
      assert.equal(source.next(), undefined);
    });
  }

  void it('formats messages like trace.csv:17: column "ContextTokens": ...', () => {
    const error = new WorkloadError(
      { file: "trace.csv", line: 17, field: "ContextTokens" },
      'expected a positive integer, got "abc"',
    );
    assert.equal(
      error.message,
      'trace.csv:17: column "ContextTokens": expected a positive integer, got "abc"',
    );
    assert.equal(new WorkloadError({ file: "t.jsonl" }, "empty").message, "t.jsonl: empty");
  });

  void it("invalid JSON names the file and line", () => {
    const path = writeFixture(
      dir,
      "broken.jsonl",
      '{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": 1,\n',
    );
    assert.throws(
      () => readAllRequests(openTrace(path)),
      (error: unknown) =>
        error instanceof WorkloadError && error.line === 2 && /invalid JSON/.test(error.message),
    );
  });
});

void describe("header errors name the file and the expected columns", () => {
  void it("missing Azure column", () => {
    const path = writeFixture(dir, "no-generated.csv", "TIMESTAMP,ContextTokens,Tokens\n" + AZURE_OK);
    assert.throws(
      () => openTrace(path, "azure"),
      (error: unknown) =>
        error instanceof WorkloadError &&
        error.file === path &&
        error.line === 1 &&
        error.message.includes(`${path}:1: missing column "GeneratedTokens"`) &&
        error.message.includes("TIMESTAMP, ContextTokens, GeneratedTokens") &&
        error.message.includes("this header has TIMESTAMP, ContextTokens, Tokens"),
    );
  });

  void it("missing splitwise columns (format given explicitly)", () => {
    const path = writeFixture(dir, "sw-missing.csv", "request_id,arrival_timestamp\n0,1\n");
    assert.throws(
      () => openTrace(path, "splitwise"),
      /missing columns "prompt_size", "token_size": a splitwise trace needs/,
    );
  });

  void it("empty file", () => {
    const path = writeFixture(dir, "empty-azure.csv", "\n");
    assert.throws(
      () => openTrace(path, "azure"),
      (error: unknown) =>
        error instanceof WorkloadError && error.file === path && /empty/.test(error.message),
    );
  });
});

void describe("UniqueIds", () => {
  void it("accepts each id once, across the bitset's growth and the large-id set", () => {
    const ids = new UniqueIds();
    for (const id of [0, 31, 32, 1_000_000, 2 ** 27 - 1, 2 ** 27, 2 ** 40]) {
      assert.equal(ids.add(id), true, `first ${id}`);
      assert.equal(ids.add(id), false, `second ${id}`);
    }
    assert.equal(ids.add(1), true);
    assert.equal(ids.add(999_999), true);
  });
});
