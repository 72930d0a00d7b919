/**
 * `splitscale compare` as a child process: compare.csv is one row per policy that pandas reads as
 * compare.json says, keyed by the same `policy` column as compare's timeline.csv.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { cli, parseCsv } from "./helpers.ts";

const scratch = mkdtempSync(join(tmpdir(), "splitscale-compare-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface ComparedRow {
  name: string;
  gpu_hours: number;
  slo_attainment: number | null;
  ttft_s: { p99: number | null };
  requests: { arrived: number; completed: number };
}

async function compare(out: string, ...extra: string[]): Promise<{ csv: string[][]; json: ComparedRow[] }> {
  const result = await cli(
    "compare",
    "--preset",
    "azure-conv-autoscale",
    "--policies",
    "static:config,sla",
    "--threads",
    "1",
    "--no-progress",
    "--json",
    "--out",
    out,
    ...extra,
  );
  assert.equal(result.code, 0, result.stderr);
  const json = (JSON.parse(result.stdout) as { policies: ComparedRow[] }).policies;
  return { csv: parseCsv(readFileSync(join(out, "compare.csv"), "utf8")), json };
}

void describe("splitscale compare", { concurrency: 2 }, () => {
  void it("writes compare.csv with a policy column matching compare.json and timeline.csv", async () => {
    const out = join(scratch, "small");
    const { csv, json } = await compare(out, "--set", "workload.limit=200");
    const [header, ...rows] = csv;
    assert.equal(header![0], "policy");
    assert.equal(rows.length, 2);
    const column = (name: string): number => header!.indexOf(name);
    rows.forEach((row, index) => {
      assert.equal(row.length, header!.length);
      const expected = json[index]!;
      assert.equal(row[0], expected.name);
      assert.equal(Number(row[column("gpu_hours")]), expected.gpu_hours);
      assert.equal(Number(row[column("ttft_p99_s")]), expected.ttft_s.p99);
      assert.equal(Number(row[column("requests_completed")]), expected.requests.completed);
    });
    const timeline = parseCsv(readFileSync(join(out, "timeline.csv"), "utf8"));
    assert.equal(timeline[0]![0], "policy");
    assert.deepEqual(
      [...new Set(timeline.slice(1).map((row) => row[0]))],
      rows.map((row) => row[0]),
    );
  });

  void it("leaves a missing value empty in compare.csv, as every other CSV does (it wrote NaN)", async () => {
    const empty = join(scratch, "empty.csv");
    writeFileSync(empty, "TIMESTAMP,ContextTokens,GeneratedTokens\n");
    const { csv, json } = await compare(join(scratch, "empty"), "--trace", empty);
    assert.equal(json[0]!.slo_attainment, null);
    const [header, ...rows] = csv;
    for (const row of rows) {
      assert.equal(row[header!.indexOf("slo_attainment")], "");
      assert.equal(row[header!.indexOf("ttft_p99_s")], "");
      for (const cell of row) assert.doesNotMatch(cell, /^(NaN|Infinity|-Infinity|null|undefined)$/);
    }
  });
});
