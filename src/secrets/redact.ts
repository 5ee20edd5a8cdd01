/** Hides secret values in text that leaves a step: its logs, outputs and errors. */

/** Shorter values are left alone: redacting "1" or "yes" would mangle every line and hide nothing. */
const MIN_REDACTED_LENGTH = 4;
const REDACTED = '***';

export class Redactor {
  private readonly forms: string[];

  constructor(values: Iterable<string>) {
    const forms = new Set<string>();
    for (const value of values) {
      if (value.length < MIN_REDACTED_LENGTH) continue;
      forms.add(value);
      // The shapes a value takes when a step logs it inside JSON, a URL or a header.
      forms.add(JSON.stringify(value).slice(1, -1));
      forms.add(encodeURIComponent(value));
      forms.add(Buffer.from(value).toString('base64').replace(/=+$/, ''));
    }
    this.forms = [...forms];
  }

  redact(text: string): string {
    // Every occurrence of every form is found first and overlapping ones merged, so two
    // secrets that share characters are both hidden whole, whatever order they are in.
    const ranges: [number, number][] = [];
    for (const form of this.forms) {
      for (let at = text.indexOf(form); at !== -1; at = text.indexOf(form, at + 1)) ranges.push([at, at + form.length]);
    }
    ranges.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const [start, end] of ranges) {
      const last = merged.at(-1);
      if (last && start <= last[1]) last[1] = Math.max(last[1], end);
      else merged.push([start, end]);
    }
    let out = '';
    let copied = 0;
    for (const [start, end] of merged) {
      out += text.slice(copied, start) + REDACTED;
      copied = end;
    }
    return out + text.slice(copied);
  }
}

/** One-off redaction; build a Redactor to redact many texts with the same values. */
export function redact(text: string, values: Iterable<string>): string {
  return new Redactor(values).redact(text);
}
