import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { errorStats } from "../../src/model/calibrate.ts";
import { loadCatalog } from "../../src/model/catalog.ts";
import type { IterationShape } from "../../src/model/performance.ts";
import {
  parseProfileCsv,
  ProfilePerformanceModel,
  RatioGrid,
  readProfileCsv,
  rowShape,
  type ProfileRow,
} from "../../src/model/profile.ts";
import { RooflinePerformanceModel } from "../../src/model/roofline.ts";
import { DEFAULT_PERF_TABLE } from "../../src/paths.ts";
import { fixtureText, SPLITWISE_FIXTURES } from "../../profiler/convert-splitwise.ts";

const catalog = loadCatalog();
const FIXTURE = join(import.meta.dirname, "fixtures", "llama2-70b-h100-tp8.csv");
const rows = readProfileCsv(FIXTURE, catalog);
const close = (actual: number, expected: number, tolerance = 1e-12): void =>
  assert.ok(Math.abs(actual / expected - 1) <= tolerance, `${actual} vs ${expected}`);

void test("the fixtures are the conversion of the shipped Splitwise table", () => {
  const table = readFileSync(DEFAULT_PERF_TABLE, "utf8");
  for (const fixture of SPLITWISE_FIXTURES) {
    const path = join(import.meta.dirname, "fixtures", fixture.file);
    assert.equal(readFileSync(path, "utf8"), fixtureText(fixture, table), `${fixture.file} is stale`);
  }
  assert.equal(rows.length, 13 + 19);
  // Upstream's Appendix A knot: llama2-70b/H100/TP8 decode at x = 512 is 30.562 ms (batch 1, prompt 512,
  // token sizes 128..8192 pooled); our batch-1 decode rows at context 512 + t/2 are the per-t medians.
  const row = rows.find((r) => r.phase === "prefill" && r.batch === 64 && r.tokens === 512)!;
  close(row.ms, 2936.3297179806978);
});

void test("exact at measured points", () => {
  const profile = new ProfilePerformanceModel(FIXTURE, { catalog });
  // The simulator names the processor (h100-80gb); the profile names the GPU: both resolve.
  const it = profile.forInstance("llama2-70b", "h100-80gb", 8);
  for (const row of rows) close(it.iterationTime(rowShape(row.phase, row.batch, row.tokens)), row.ms / 1000);
  assert.equal(profile.covers("llama2-70b", "h100-80gb", 8), true);
  assert.equal(profile.covers("llama2-70b", "h100", 4), false);
});

void test("interpolates between measured points: bilinear in the measured/roofline ratio", () => {
  const profile = new ProfilePerformanceModel(FIXTURE, { catalog });
  const it = profile.forInstance("llama2-70b", "h100-sxm-80gb", 8);
  const roofline = profile.roofline.forInstance("llama2-70b", "h100-sxm-80gb", 8);
  const ms = (phase: "prefill" | "decode", batch: number, tokens: number): number =>
    rows.find((r) => r.phase === phase && r.batch === batch && r.tokens === tokens)!.ms / 1000;
  const ratio = (phase: "prefill" | "decode", batch: number, tokens: number): number =>
    ms(phase, batch, tokens) / roofline.iterationTime(rowShape(phase, batch, tokens));

  // Along tokens (batch 1, seq_len 3000 between the 2048 and 4096 measurements)
  const w = (3000 - 2048) / (4096 - 2048);
  const expected =
    roofline.iterationTime(rowShape("prefill", 1, 3000)) *
    ((1 - w) * ratio("prefill", 1, 2048) + w * ratio("prefill", 1, 4096));
  close(it.iterationTime(rowShape("prefill", 1, 3000)), expected);
  const between = it.iterationTime(rowShape("prefill", 1, 3000));
  assert.ok(between > ms("prefill", 1, 2048) && between < ms("prefill", 1, 4096));

  // Along batch (decode batch 24 between 16 and 32, context 576)
  const v = (24 - 16) / (32 - 16);
  close(
    it.iterationTime(rowShape("decode", 24, 576)),
    roofline.iterationTime(rowShape("decode", 24, 576)) *
      ((1 - v) * ratio("decode", 16, 576) + v * ratio("decode", 32, 576)),
  );
});

void test("RatioGrid is bilinear on a full grid and holds row ends outside", () => {
  const grid = RatioGrid.fromPoints([
    { batch: 1, tokens: 100, ratio: 1 },
    { batch: 1, tokens: 200, ratio: 2 },
    { batch: 3, tokens: 100, ratio: 3 },
    { batch: 3, tokens: 200, ratio: 5 },
  ]);
  // Bilinear: at (2, 150) the mean of the four corners
  assert.equal(grid.ratio(2, 150), (1 + 2 + 3 + 5) / 4);
  assert.equal(grid.ratio(1, 150), 1.5);
  assert.equal(grid.ratio(3, 175), 4.5);
  assert.equal(grid.ratio(1, 50), 1); // held at the row's end
  assert.equal(grid.ratio(5, 300), 5); // held at the corner
  assert.equal(grid.contains(2, 150), true);
  assert.equal(grid.contains(2, 250), false);
  assert.equal(grid.contains(4, 150), false);
});

void test("outside the measured range: anchored roofline by default, plain roofline on request", () => {
  const anchored = new ProfilePerformanceModel(rows, { catalog }).forInstance("llama2-70b", "h100", 8);
  const plain = new ProfilePerformanceModel(rows, { catalog, outside: "roofline" }).forInstance(
    "llama2-70b",
    "h100",
    8,
  );
  const roofline = new RooflinePerformanceModel({}, catalog).forInstance("llama2-70b", "h100", 8);
  const far = rowShape("prefill", 1, 32768);
  // Plain: exactly the roofline
  assert.equal(plain.iterationTime(far), roofline.iterationTime(far));
  // Anchored: the roofline scaled by the measured/roofline ratio at the nearest measured edge (1 x 8192)
  const edge = rows.find((r) => r.phase === "prefill" && r.batch === 1 && r.tokens === 8192)!;
  const edgeRatio = edge.ms / 1000 / roofline.iterationTime(rowShape("prefill", 1, 8192));
  close(anchored.iterationTime(far), roofline.iterationTime(far) * edgeRatio);
  // Decode beyond the largest batch
  const big = rowShape("decode", 256, 576);
  assert.equal(plain.iterationTime(big), roofline.iterationTime(big));
  assert.ok(anchored.iterationTime(big) > anchored.iterationTime(rowShape("decode", 64, 576)));
  // A combination the profile does not cover is the roofline alone
  const other = new ProfilePerformanceModel(rows, { catalog }).forInstance("llama3-8b", "h100", 1);
  const rooflineOther = new RooflinePerformanceModel({}, catalog).forInstance("llama3-8b", "h100", 1);
  assert.equal(other.iterationTime(far), rooflineOther.iterationTime(far));
});

void test("mixed batches weight the prefill and decode ratios by their roofline time", () => {
  const it = new ProfilePerformanceModel(rows, { catalog }).forInstance("llama2-70b", "h100", 8);
  const roofline = new RooflinePerformanceModel({}, catalog).forInstance("llama2-70b", "h100", 8);
  const mixed: IterationShape = {
    prefillTokens: 512,
    numPrefill: 1,
    numDecode: 16,
    decodeContextTokens: 16 * 576,
  };
  const p = rowShape("prefill", 1, 512);
  const d = rowShape("decode", 16, 576);
  const rp = it.iterationTime(p) / roofline.iterationTime(p);
  const rd = it.iterationTime(d) / roofline.iterationTime(d);
  const tp = roofline.iterationTime(p);
  const td = roofline.iterationTime(d);
  close(it.iterationTime(mixed), (roofline.iterationTime(mixed) * (rp * tp + rd * td)) / (tp + td));
});

void test("held-out measured points are predicted within a few percent (leave-one-out)", () => {
  const predict = (held: ProfileRow): number =>
    new ProfilePerformanceModel(
      rows.filter((r) => r !== held),
      { catalog },
    )
      .forInstance(held.model, held.gpu, held.tp)
      .iterationTime(rowShape(held.phase, held.batch, held.tokens));
  for (const [phase, median, worst] of [
    ["prefill", 0.2, 0.35],
    ["decode", 0.05, 0.2],
  ] as const) {
    const held = rows.filter((r) => r.phase === phase);
    const stats = errorStats(
      held.map(predict),
      held.map((r) => r.ms / 1000),
    );
    assert.ok(stats.median < median && stats.worst < worst, `${phase}: ${JSON.stringify(stats)}`);
  }
});

void test("bad CSV rows name the file, line and column", () => {
  const header = "model,gpu,tp,phase,batch,seq_len,context,ms";
  const parse = (body: string) => () => parseProfileCsv(`# comment\n${header}\n${body}\n`, "p.csv", catalog);
  assert.throws(
    parse("llama2-70b,h100,8,prefill,x,512,,10"),
    /^ConfigError: p\.csv:3: column batch \(5\): expected an integer >= 1, got "x"/,
  );
  assert.throws(
    parse("llama2-70b,h100,8,prefill,1,512,,10\nllama2-70b,h100,8,decode,1,,,10"),
    /p\.csv:4: column context \(7\)/,
  );
  assert.throws(
    parse("llama2-70b,h100,8,prefill,1,512,,-3"),
    /p\.csv:3: column ms \(8\): expected a positive number/,
  );
  assert.throws(
    parse("llama2-70b,h100,8,prefil,1,512,,3"),
    /p\.csv:3: column phase \(4\): expected prefill or decode/,
  );
  assert.throws(
    parse("llama2-70c,h100,8,prefill,1,512,,3"),
    /p\.csv:3: column model \(1\): unknown model "llama2-70c"\. Did you mean "llama2-70b"\?/,
  );
  assert.throws(parse("llama2-70b,h10,8,prefill,1,512,,3"), /p\.csv:3: column gpu \(2\): unknown GPU "h10"/);
  assert.throws(parse("llama2-70b,h100,8,prefill,1,512,3"), /p\.csv:3: expected 8 columns, got 7/);
  assert.throws(
    () => parseProfileCsv("model,gpu,tp\n", "q.csv", catalog),
    /q\.csv:1: missing column "phase"/,
  );
  assert.throws(
    () => readProfileCsv("/nonexistent/profile.csv", catalog),
    /cannot read profile \/nonexistent\/profile\.csv/,
  );
  // Extra columns are allowed (the profiler may add some), in any order
  const parsed = parseProfileCsv(
    "ms,phase,model,gpu,tp,batch,seq_len,context,note\n12.5,decode,llama3-8b,h100-80gb,1,4,,100,x\n",
    "r.csv",
    catalog,
  );
  assert.deepEqual(parsed, [
    {
      model: "llama3-8b",
      gpu: "h100-sxm-80gb",
      tp: 1,
      phase: "decode",
      batch: 4,
      tokens: 100,
      ms: 12.5,
      line: 2,
    },
  ]);
});
