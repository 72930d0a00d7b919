import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArrivalRanker, SimRequest, TaskState, type Task } from "../../src/serving/request.ts";

/** Every own field of a task except its back-reference to the request (compared separately). */
function taskFields(task: Task): Record<string, unknown> {
  const { request: _request, ...fields } = task;
  return fields;
}

void describe("SimRequest.reuse", () => {
  void it("gives a request equal in every field to a newly built one", () => {
    const used = new SimRequest(1, 0.5, 1, 100, 20);
    // Dirty every field a run touches.
    Object.assign(used, {
      memory: 123,
      promptStartTime: 1,
      firstTokenTime: 2,
      selectionEpoch: 9,
    });
    used.poolHead = used.prompt;
    used.poolNext = used.token;
    for (const task of [used.prompt, used.token]) {
      Object.assign(task, {
        state: TaskState.Completed,
        genBase: 5,
        stepsAtJoin: 6,
        doneAt: 7,
        batchSeq: 8,
        numPreemptions: 4,
        inBatch: true,
        selected: 3,
        requestEpoch: 3,
        arrivalTime: 1,
        startTime: 1,
        completionTime: 2,
        runTime: 1,
        reserved: true,
        preemptions: 2,
        queueMark: 4,
        headsPool: true,
        poolSibling: task === used.prompt ? used.token : used.prompt,
      });
    }
    used.prompt.chained = used.token;

    const reused = used.reuse(7, 3.25, 4, 512, 64);
    const fresh = new SimRequest(7, 3.25, 4, 512, 64);
    assert.equal(reused, used, "reuse returns the same object");
    const { prompt: reusedPrompt, token: reusedToken, ...reusedFields } = reused;
    const { prompt: freshPrompt, token: freshToken, ...freshFields } = fresh;
    assert.deepEqual(reusedFields, freshFields);
    assert.deepEqual(taskFields(reusedPrompt), taskFields(freshPrompt));
    assert.deepEqual(taskFields(reusedToken), taskFields(freshToken));
    assert.equal(reusedPrompt.request, reused);
    assert.equal(reusedToken.request, reused);
  });
});

void describe("ArrivalRanker", () => {
  void it("orders ranks as arrival times, equal times sharing a rank", () => {
    const ranks = new ArrivalRanker();
    const times = [0, 0, 0.25, 0.25, 0.25, 1e-9 + 0.25, 7, 7.5, 7.5];
    const got = times.map((time) => ranks.rankOf(time));
    for (let i = 0; i < times.length; i++) {
      for (let j = 0; j < times.length; j++) {
        assert.equal(got[i]! < got[j]!, times[i]! < times[j]!, `${times[i]} vs ${times[j]}`);
        assert.equal(got[i] === got[j], times[i] === times[j]);
      }
    }
    assert.ok(got.every((rank) => Number.isInteger(rank)));
  });

  void it("refuses an arrival earlier than the last one", () => {
    const ranks = new ArrivalRanker();
    ranks.rankOf(2);
    assert.throws(() => ranks.rankOf(1), /arrival 1 s comes after 2 s/);
  });
});
