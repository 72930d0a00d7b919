/** Bad input from the user (config, flags, files): exit code 2, message printed without a stack. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A well-formed configuration that cannot run (does not fit, contradicts itself): exit code 3. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Suggests the closest known name for a typo ("did you mean ...?"). */
export function closestName(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined;
}

export function unknownNameMessage(kind: string, input: string, candidates: readonly string[]): string {
  const suggestion = closestName(input, candidates);
  const hint = suggestion === undefined ? "" : ` Did you mean "${suggestion}"?`;
  return `unknown ${kind} "${input}".${hint} Known: ${candidates.join(", ")}.`;
}

function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]!;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]!;
      previous[j] = Math.min(above + 1, previous[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return previous[b.length]!;
}
