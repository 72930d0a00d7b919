import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

/** Root of the installed package (works from src/ under tsx and from dist/ once compiled). */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const CATALOG_DIR = join(PACKAGE_ROOT, "catalog");
export const DATA_DIR = join(PACKAGE_ROOT, "data");
export const PRESETS_DIR = join(PACKAGE_ROOT, "presets");
export const DEFAULT_PERF_TABLE = join(DATA_DIR, "perf", "splitwise_perf_model.csv");
export const AZURE_CONV_TRACE = join(DATA_DIR, "traces", "azure-llm-2023", "AzureLLMInferenceTrace_conv.csv");
export const AZURE_CODE_TRACE = join(DATA_DIR, "traces", "azure-llm-2023", "AzureLLMInferenceTrace_code.csv");
