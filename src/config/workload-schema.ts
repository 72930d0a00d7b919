import { workloadSpecSchema } from "../workload/schema.ts";

/** The `workload:` key of a simulation config; absent means the bundled Azure conversation trace. */
export const workloadSchema = workloadSpecSchema.optional();
