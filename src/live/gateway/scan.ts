/**
 * What the gateway reads in the worker's answers as they pass, on the raw bytes (no decoding, no
 * line strings: it runs on every chunk of every stream): SSE events (tokens, `[DONE]`, error events)
 * and the output tokens of a JSON answer's usage block.
 */

const LF = 10;
const DATA = Buffer.from("data:");
const DONE = Buffer.from("[DONE]");
const ERROR = Buffer.from('{"error"');
/** The usage event of a stream (OpenAI's include_usage) has no choices: it is no token. */
const NO_CHOICES = Buffer.from('"choices":[]');
const COMPLETION_TOKENS = Buffer.from('"completion_tokens"');

/** ASCII whitespace, as String.prototype.trim sees it. */
function isSpace(byte: number): boolean {
  return byte === 32 || (byte >= 9 && byte <= 13);
}

function hasAt(buffer: Buffer, at: number, end: number, pattern: Buffer): boolean {
  if (end - at < pattern.length) return false;
  for (let i = 0; i < pattern.length; i++) if (buffer[at + i] !== pattern[i]) return false;
  return true;
}

/** Counts the events of an SSE stream chunk by chunk: token events, `[DONE]`, error events. */
export class SseScan {
  tokens = 0;
  sawDone = false;
  sawError = false;
  /** The start of a line that continues in the next chunk. */
  private carry: Buffer | undefined;

  scan(chunk: Buffer): void {
    let buffer = chunk;
    if (this.carry !== undefined) {
      buffer = Buffer.concat([this.carry, chunk]);
      this.carry = undefined;
    }
    // Where the next `"choices":[]` is (searched once per chunk, not once per line).
    let noChoicesAt = -2;
    let start = 0;
    for (let newline = buffer.indexOf(LF); newline >= 0; newline = buffer.indexOf(LF, start)) {
      let at = start;
      let end = newline;
      start = newline + 1;
      while (at < end && isSpace(buffer[at]!)) at++;
      while (end > at && isSpace(buffer[end - 1]!)) end--;
      if (!hasAt(buffer, at, end, DATA)) continue;
      at += DATA.length;
      while (at < end && isSpace(buffer[at]!)) at++;
      if (end - at === DONE.length && hasAt(buffer, at, end, DONE)) this.sawDone = true;
      else if (hasAt(buffer, at, end, ERROR)) this.sawError = true;
      else {
        if (noChoicesAt !== -1 && noChoicesAt < at) noChoicesAt = buffer.indexOf(NO_CHOICES, at);
        if (noChoicesAt < 0 || noChoicesAt + NO_CHOICES.length > end) this.tokens++;
      }
    }
    if (start < buffer.length) this.carry = buffer.subarray(start);
  }
}

/** Output tokens of a JSON answer (`"completion_tokens": N` in its usage block), 0 without one. */
export function completionTokensIn(body: Buffer): number {
  for (let at = body.indexOf(COMPLETION_TOKENS); at >= 0; at = body.indexOf(COMPLETION_TOKENS, at + 1)) {
    let i = at + COMPLETION_TOKENS.length;
    while (i < body.length && isSpace(body[i]!)) i++;
    if (body[i] !== 58 /* : */) continue;
    i++;
    while (i < body.length && isSpace(body[i]!)) i++;
    let digits = 0;
    let value = 0;
    for (; i < body.length && body[i]! >= 48 && body[i]! <= 57; i++, digits++)
      value = value * 10 + body[i]! - 48;
    if (digits > 0) return value;
  }
  return 0;
}
