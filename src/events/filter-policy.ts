/**
 * Subscription filter policies on message attributes, as SNS evaluates them:
 * every key of the policy must match (AND); a key's list matches if any entry
 * matches (OR). Entries: a string or number (exact), { prefix }, { suffix },
 * { "anything-but": value | [values] }, { numeric: [op, n, ...] }, { exists: bool }.
 * A String.Array attribute matches if any of its elements does.
 */
import type { MessageAttributes } from './md5.js';

export function matchesFilter(policy: Record<string, unknown> | undefined, attributes: MessageAttributes | undefined): boolean {
  if (!policy) return true;
  return Object.entries(policy).every(([name, rule]) => {
    const attribute = attributes?.[name];
    const rules = Array.isArray(rule) ? rule : [rule];
    const values = attribute === undefined ? [] : attributeValues(attribute.DataType, attribute.StringValue ?? '');
    return rules.some((entry) => matchesEntry(entry, attribute !== undefined, values));
  });
}

/** The attribute's values with their types: strings stay strings, Number attributes become numbers. */
function attributeValues(dataType: string, value: string): (string | number)[] {
  if (dataType === 'String.Array') {
    try {
      const parsed: unknown = JSON.parse(value);
      if (Array.isArray(parsed)) return parsed.filter((v): v is string | number => typeof v === 'string' || typeof v === 'number');
    } catch {
      return [value];
    }
  }
  return dataType.startsWith('Number') ? [Number(value)] : [value];
}

/** Types matter, as in SNS: the rule "75" does not match the number 75, nor 75 the string "75". */
function matchesEntry(entry: unknown, present: boolean, values: (string | number)[]): boolean {
  if (typeof entry === 'string' || typeof entry === 'number') return values.some((v) => v === entry);
  if (entry === null || typeof entry !== 'object') return false;
  const rule = entry as Record<string, unknown>;
  if ('exists' in rule) return present === Boolean(rule.exists);
  if (!present) return false;
  const strings = values.filter((v): v is string => typeof v === 'string');
  if (typeof rule.prefix === 'string') return strings.some((v) => v.startsWith(rule.prefix as string));
  if (typeof rule.suffix === 'string') return strings.some((v) => v.endsWith(rule.suffix as string));
  if ('anything-but' in rule) {
    const excluded = Array.isArray(rule['anything-but']) ? rule['anything-but'] : [rule['anything-but']];
    return values.every((v) => !excluded.includes(v));
  }
  if (Array.isArray(rule.numeric)) return values.some((v) => typeof v === 'number' && matchesNumeric(rule.numeric as unknown[], v));
  return false;
}

function matchesNumeric(conditions: unknown[], value: number): boolean {
  for (let i = 0; i + 1 < conditions.length; i += 2) {
    const bound = Number(conditions[i + 1]);
    const ok =
      conditions[i] === '=' ? value === bound
      : conditions[i] === '<' ? value < bound
      : conditions[i] === '<=' ? value <= bound
      : conditions[i] === '>' ? value > bound
      : conditions[i] === '>=' ? value >= bound
      : false;
    if (!ok) return false;
  }
  return true;
}
