/**
 * Real-world trace files that are not quite what the readers were written for: quoted CSV values,
 * shifted columns, duplicate headers, non-decimal numbers, the wrong --trace-format, no header. Each
 * is either read exactly or refused with the file, line and what was expected.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  WorkloadError,
  detectTraceFormat,
  openTrace,
  readAllRequests,
  type TraceFormat,
} from "../../src/workload/index.ts";
import { tempDir, writeFixture } from "./helpers.ts";

const dir = tempDir();
const AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
const SPLITWISE_HEADER =
  "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size\n";
const MOONCAKE_ROW = '{"timestamp": 0, "input_length": 5, "output_length": 1}\n';

let fixtures = 0;
function fixture(content: string, extension = "csv"): string {
  return writeFixture(dir, `input-${fixtures++}.${extension}`, content);
}

/** Asserts that reading `path` as `format` fails with a WorkloadError at `line` (and `field`). */
function assertRefused(
  path: string,
  format: TraceFormat | "auto",
  expected: { line?: number; field?: string; message: RegExp },
): void {
  assert.throws(
    () => readAllRequests(openTrace(path, format)),
    (error: unknown) => {
      assert.ok(error instanceof WorkloadError, String(error));
      assert.equal(error.file, path);
      assert.equal(error.line, expected.line);
      assert.equal(error.field, expected.field);
      assert.match(error.message, expected.message);
      return true;
    },
  );
}

void describe("quoted CSV values", () => {
  void it("reads a trace whose values are all quoted, as R's write.csv writes it", () => {
    const path = fixture(
      '"TIMESTAMP","ContextTokens","GeneratedTokens"\n' +
        '"2023-11-16 18:15:46.6805900","374","44"\n' +
        '"2023-11-16 18:15:47.5", "10" ,"2"\n',
    );
    assert.deepEqual(readAllRequests(openTrace(path)), [
      { id: 0, arrival_s: 0, prompt_tokens: 374, output_tokens: 44 },
      { id: 1, arrival_s: 0.81941, prompt_tokens: 10, output_tokens: 2 },
    ]);
  });

  void it("keeps commas and doubled quotes inside a quoted value from shifting the columns", () => {
    const path = fixture(
      'request_id,note,arrival_timestamp,prompt_size,token_size\n0,"a, b",1.5,100,7\n1,"say ""hi"", ok",2,200,8\n',
    );
    assert.deepEqual(readAllRequests(openTrace(path)), [
      { id: 0, arrival_s: 1.5, prompt_tokens: 100, output_tokens: 7 },
      { id: 1, arrival_s: 2, prompt_tokens: 200, output_tokens: 8 },
    ]);
  });

  void it("refuses a quote that is not closed on its line, naming the column", () => {
    const path = fixture(AZURE_HEADER + '2023-11-16 18:15:46,"10,5\n');
    assertRefused(path, "azure", {
      line: 2,
      field: "ContextTokens",
      message: /column "ContextTokens": a quoted value is not closed on this line/,
    });
  });

  void it("refuses text after a closing quote", () => {
    const path = fixture(AZURE_HEADER + '2023-11-16 18:15:46,"10"0,5\n');
    assertRefused(path, "azure", {
      line: 2,
      field: "ContextTokens",
      message: /unexpected text after the closing quote/,
    });
  });
});

void describe("rows that do not line up with the header", () => {
  void it("refuses a row with more values than the header (a thousands separator shifts the columns)", () => {
    const path = fixture(SPLITWISE_HEADER + "0,2,0,1.0,1,100,7\n1,2,0,2.0,1,4,096,32\n");
    assertRefused(path, "splitwise", {
      line: 3,
      message: /the line has 8 values but the header has 7 columns: a comma inside a value/,
    });
    const azure = fixture(AZURE_HEADER + "2023-11-16 18:15:46,1,500,5\n");
    assertRefused(azure, "azure", { line: 2, message: /4 values but the header has 3 columns/ });
  });

  void it("accepts trailing commas (empty extra values) on the rows or the header", () => {
    const rows = fixture(AZURE_HEADER + "2023-11-16 18:15:46,10,5,\n2023-11-16 18:15:47,11,6,,\n");
    assert.deepEqual(
      readAllRequests(openTrace(rows)).map((request) => [request.prompt_tokens, request.output_tokens]),
      [
        [10, 5],
        [11, 6],
      ],
    );
    const header = fixture("TIMESTAMP,ContextTokens,GeneratedTokens,\n2023-11-16 18:15:46,10,5\n");
    assert.equal(readAllRequests(openTrace(header)).length, 1);
  });

  void it("refuses a header that names a column twice, also in another case", () => {
    const path = fixture(
      "TIMESTAMP,ContextTokens,GeneratedTokens,contexttokens\n2023-11-16 18:15:46,10,5,99\n",
    );
    assertRefused(path, "azure", {
      line: 1,
      message: /the header names column "ContextTokens" twice \(columns 2 and 4\)/,
    });
    const splitwise = fixture(SPLITWISE_HEADER.trimEnd() + ",arrival_timestamp\n0,2,0,1,1,10,2,5\n");
    assertRefused(splitwise, "splitwise", { line: 1, message: /"arrival_timestamp" twice/ });
  });

  void it("points at a comment line", () => {
    const path = fixture(AZURE_HEADER + "# exported 2023-11-16\n2023-11-16 18:15:46,10,5\n");
    assertRefused(path, "azure", {
      line: 2,
      field: "ContextTokens",
      message: /the line has 1 column, expected at least 2 \(comment lines are not supported/,
    });
    assertRefused(fixture("# exported 2023-11-16\n" + AZURE_HEADER), "auto", {
      line: 1,
      message: /comment lines are not supported/,
    });
  });
});

void describe("numbers", () => {
  void it("refuses hexadecimal, binary and octal numbers, which Number() would read", () => {
    for (const [row, field] of [
      ["0,2,0,1.0,1,0x10,7", "prompt_size"],
      ["0,2,0,1.0,1,10,0b11", "token_size"],
      ["0,2,0,0x10,1,10,7", "arrival_timestamp"],
      ["0o7,2,0,1.0,1,10,7", "request_id"],
    ] as const) {
      assertRefused(fixture(SPLITWISE_HEADER + row + "\n"), "splitwise", {
        line: 2,
        field,
        message: /expected a (positive integer|number|non-negative integer), got "0[xbo]/,
      });
    }
    assertRefused(fixture(AZURE_HEADER + "2023-11-16 18:15:46,0X1F,5\n"), "azure", {
      line: 2,
      field: "ContextTokens",
      message: /got "0X1F"/,
    });
  });

  void it("reads decimal forms: 4096.0, 4096., 1e3, +7, .5 s, leading zeros", () => {
    const path = fixture(
      SPLITWISE_HEADER + "0,2,0,.5,1,4096.0,1e3\n1,2,0,5.,1,4096.,+7\n2,2,0,6,1,010,2.000\n",
    );
    assert.deepEqual(
      readAllRequests(openTrace(path)).map((request) => [
        request.arrival_s,
        request.prompt_tokens,
        request.output_tokens,
      ]),
      [
        [0.5, 4096, 1000],
        [5, 4096, 7],
        [6, 10, 2],
      ],
    );
  });

  void it("says why a request_id beyond 2^53 is refused", () => {
    assertRefused(fixture(SPLITWISE_HEADER + "9007199254740993,2,0,1,1,10,2\n"), "splitwise", {
      line: 2,
      field: "request_id",
      message: /"9007199254740993" is more than 9007199254740991, the largest integer kept exactly/,
    });
  });

  void it("reads a timestamp padded with tabs", () => {
    const path = fixture(AZURE_HEADER + "\t2023-11-16 18:15:46.5\t,10,5\n2023-11-16 18:15:47,10,5\n");
    assert.deepEqual(
      readAllRequests(openTrace(path)).map((request) => request.arrival_s),
      [0, 0.5],
    );
  });
});

void describe("the wrong format or no header", () => {
  void it("a splitwise trace read as Azure, and the other way round, says which format it looks like", () => {
    const splitwise = fixture(SPLITWISE_HEADER + "0,2,0,1,1,10,2\n");
    assertRefused(splitwise, "azure", {
      line: 1,
      message:
        /an Azure LLM inference trace needs.*; the file looks like a splitwise trace: set the trace format to splitwise or auto/,
    });
    const azure = fixture(AZURE_HEADER + "2023-11-16 18:15:46,10,5\n");
    assertRefused(azure, "splitwise", {
      line: 1,
      message: /the file looks like an Azure LLM inference trace: set the trace format to azure or auto/,
    });
  });

  void it("a Mooncake trace read as CSV, and a CSV trace read as Mooncake", () => {
    const mooncake = fixture(MOONCAKE_ROW, "jsonl");
    assertRefused(mooncake, "azure", {
      line: 1,
      message:
        /not a CSV header; the file looks like a Mooncake JSON Lines trace: set the trace format to mooncake/,
    });
    assertRefused(fixture(AZURE_HEADER + "2023-11-16 18:15:46,10,5\n"), "mooncake", {
      line: 1,
      message: /expected one JSON object per line, got TIMESTAMP,.*looks like an Azure LLM inference trace/,
    });
  });

  void it("a CSV trace without its header line says so", () => {
    const path = fixture("2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47.0,10,5\n");
    assertRefused(path, "auto", {
      line: 1,
      message: /looks like data, not a header: a CSV trace needs a header line first/,
    });
    assertRefused(path, "azure", { line: 1, message: /looks like data, not a header/ });
    assertRefused(fixture("0,2,0,1.0,1,10,2\n"), "splitwise", { line: 1, message: /looks like data/ });
  });

  void it("a file separated by semicolons says so", () => {
    const path = fixture("TIMESTAMP;ContextTokens;GeneratedTokens\n2023-11-16 18:15:46;10;5\n");
    assertRefused(path, "auto", { line: 1, message: /values must be separated by commas.*semicolons/ });
    assertRefused(path, "azure", { line: 1, message: /values must be separated by commas.*semicolons/ });
  });

  void it("a pretty-printed JSON document says Mooncake traces are one object per line", () => {
    const path = fixture('{\n  "timestamp": 0, "input_length": 5, "output_length": 1\n}\n', "jsonl");
    assertRefused(path, "auto", { line: 1, message: /invalid JSON.*one whole JSON object on each line/ });
    const array = fixture(`[\n${MOONCAKE_ROW}]\n`, "json");
    assertRefused(array, "auto", { line: 1, message: /one whole JSON object on each line/ });
  });

  void it("detects a splitwise header that also has a timestamp column as splitwise", () => {
    const path = fixture("request_id,timestamp,arrival_timestamp,prompt_size,token_size\n0,x,1.0,10,2\n");
    assert.equal(detectTraceFormat(path), "splitwise");
    assert.deepEqual(readAllRequests(openTrace(path)), [
      { id: 0, arrival_s: 1, prompt_tokens: 10, output_tokens: 2 },
    ]);
  });
});
