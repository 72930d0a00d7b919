/**
 * Request validation: the hand-written recognizer of common bodies (`surelyValid`, which skips zod
 * on the hot path) must never accept a body the schema refuses, nor one the schema would change.
 * Checked on thousands of generated bodies, near-valid ones mostly, and on the usual shapes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import {
  chatSchema,
  completionsSchema,
  surelyValid,
  validateBody,
  type RequestKind,
} from "../../src/live/openai.ts";

const pools: Record<string, readonly unknown[]> = {
  model: ["m", "", 3, null, ["m"]],
  stream: [true, false, null, "yes", 0],
  stream_options: [{ include_usage: true }, { include_usage: "x" }, null, [], 1],
  max_tokens: [1, 16, 0, -3, 2.5, null, "8", 2 ** 60, Number.MAX_SAFE_INTEGER],
  prompt_tokens: [5, 0, null, 1.5, "5"],
  ignore_eos: [true, false, null, "true"],
  min_tokens: [0, 3, -1, 1.5],
  n: [1, 2, null],
  prompt: ["hello", "", ["a", "b"], [], [1, 2, 3], [[1], [2]], [-1], null, 7, { text: "x" }],
  messages: [
    [{ role: "user", content: "hi" }],
    [{ role: "user" }],
    [{ role: "user", content: null }],
    [{ role: "user", content: [{ type: "text", text: "hi" }] }],
    [{ role: "", content: "hi" }],
    [{ role: "user", content: 5 }],
    [{ content: "hi" }],
    [["user", "hi"]],
    [null],
    [],
    "hi",
    null,
  ],
  max_completion_tokens: [1, 0, null, 2.5, "1"],
  temperature: [0.7, "hot", null],
};

function generate(rng: Rng): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [key, values] of Object.entries(pools)) {
    // Required fields are usually there, optional ones now and then; valid values are listed first.
    const required = key === "model" || key === "prompt" || key === "messages";
    if (rng.nextFloat() > (required ? 0.9 : 0.35)) continue;
    const valid = rng.nextFloat() < 0.7;
    body[key] = values[valid ? 0 : rng.nextInt(values.length)];
  }
  return body;
}

void describe("surelyValid", () => {
  void it("accepts only bodies the schema accepts unchanged (10,000 generated bodies per kind)", () => {
    for (const kind of ["completions", "chat"] as RequestKind[]) {
      const schema = kind === "chat" ? chatSchema : completionsSchema;
      const rng = new Rng(kind === "chat" ? 7 : 11);
      let recognized = 0;
      let valid = 0;
      for (let i = 0; i < 10_000; i++) {
        const body = generate(rng);
        const result = schema.safeParse(body);
        if (result.success) valid++;
        if (!surelyValid(kind, body)) continue;
        recognized++;
        assert.ok(result.success, `${kind}: ${JSON.stringify(body)} passed by hand but not by the schema`);
        assert.deepEqual(result.data, body, `${kind}: the schema changes ${JSON.stringify(body)}`);
      }
      assert.ok(recognized > 500, `${kind}: ${recognized} of ${valid} valid bodies recognized by hand`);
    }
  });

  void it("recognizes the usual requests, and validateBody gives them back as sent", () => {
    const usual: [RequestKind, Record<string, unknown>][] = [
      ["completions", { model: "m", prompt: "hello", max_tokens: 16, temperature: 0.7 }],
      [
        "completions",
        { model: "m", prompt: "x", prompt_tokens: 900, max_tokens: 100, ignore_eos: true, stream: true },
      ],
      [
        "chat",
        {
          model: "m",
          messages: [
            { role: "system", content: "be brief" },
            { role: "user", content: "hi" },
          ],
        },
      ],
      [
        "chat",
        { model: "m", messages: [{ role: "user", content: "hi" }], max_completion_tokens: 64, stream: false },
      ],
    ];
    for (const [kind, body] of usual) {
      assert.ok(surelyValid(kind, body), JSON.stringify(body));
      const validated = validateBody(kind, body);
      assert.ok(validated.ok && validated.body === body);
    }
  });
});
