import { z } from "zod";

// Temporary: replaced by the workload module's schema once it lands.
export const workloadSchema = z.unknown().optional();
