/** Waiting on what long-running `berth` commands (logs --follow, dev) print. */

/** Polls `read` until it matches `pattern`; fails with what was read if it does not within `timeoutMs`. */
export async function waitForText(read: () => string, pattern: RegExp, timeoutMs: number, what = 'output'): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = read();
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`${what} did not match ${pattern} within ${timeoutMs} ms:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
