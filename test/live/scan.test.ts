/**
 * The gateway's byte-level readers of worker answers: SSE events counted chunk by chunk whatever the
 * chunk boundaries, and output tokens from a JSON usage block.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { completionTokensIn, SseScan } from "../../src/live/gateway/scan.ts";

const token = (text: string) => `data: {"choices":[{"index":0,"text":"${text}","finish_reason":null}]}\n\n`;
const usage = 'data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n';

function scanIn(pieces: readonly string[]): SseScan {
  const scan = new SseScan();
  for (const piece of pieces) scan.scan(Buffer.from(piece));
  return scan;
}

void describe("SseScan", () => {
  void it("counts token events, not the usage event, and sees [DONE]", () => {
    const scan = scanIn([token(" a"), token(" b"), usage, "data: [DONE]\n\n"]);
    assert.deepEqual([scan.tokens, scan.sawDone, scan.sawError], [2, true, false]);
  });

  void it("gives the same counts at every split of the stream into two chunks, and byte by byte", () => {
    const stream = `${token(" é")}${token(" b")}\r\n${usage}data:[DONE]\n\n`;
    const bytes = Buffer.from(stream);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const scan = new SseScan();
      scan.scan(bytes.subarray(0, cut));
      scan.scan(bytes.subarray(cut));
      assert.deepEqual([scan.tokens, scan.sawDone, scan.sawError], [2, true, false], `cut at ${cut}`);
    }
    const byByte = new SseScan();
    for (let i = 0; i < bytes.length; i++) byByte.scan(bytes.subarray(i, i + 1));
    assert.deepEqual([byByte.tokens, byByte.sawDone], [2, true]);
  });

  void it("finds several events and a usage event in one chunk", () => {
    const scan = scanIn([`${token("a")}${usage}${token("b")}${token("c")}`]);
    assert.equal(scan.tokens, 3);
    assert.equal(scan.sawDone, false);
  });

  void it("sees an error event and ignores comments and other fields", () => {
    const scan = scanIn([": keep-alive\n\nevent: x\n", 'data: {"error":{"message":"boom"}}\n\n']);
    assert.deepEqual([scan.tokens, scan.sawDone, scan.sawError], [0, false, true]);
  });

  void it("does not count an unfinished last line", () => {
    const scan = scanIn([token("a"), 'data: {"choices":[{"text":"b"']);
    assert.equal(scan.tokens, 1);
  });
});

void describe("completionTokensIn", () => {
  void it("reads completion_tokens from a usage block, with or without spaces", () => {
    assert.equal(completionTokensIn(Buffer.from('{"usage":{"prompt_tokens":5,"completion_tokens":17}}')), 17);
    assert.equal(completionTokensIn(Buffer.from('{"usage": {"completion_tokens" :\n 250, "x": 1}}')), 250);
  });

  void it("is 0 without a usage block, and skips a key that is not followed by a number", () => {
    assert.equal(completionTokensIn(Buffer.from('{"choices":[]}')), 0);
    assert.equal(
      completionTokensIn(Buffer.from('{"completion_tokens":"n/a","usage":{"completion_tokens":4}}')),
      4,
    );
  });
});
