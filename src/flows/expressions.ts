/**
 * Expressions in flows are JSONata: safe (no access to the process), and what Step Functions
 * uses. `if` and `forEach` are expressions; in `input` and `http` any string may hold
 * `{% expression %}`: a string that is only an expression becomes its value (of any type), and
 * expressions inside other text are interpolated.
 */
import jsonata from 'jsonata';

const TEMPLATE = /\{%([\s\S]*?)%\}/g;
const WHOLE = /^\{%([\s\S]*?)%\}$/;

const compiled = new Map<string, jsonata.Expression>();

function compile(expression: string): jsonata.Expression {
  let found = compiled.get(expression);
  if (!found) {
    found = jsonata(expression);
    compiled.set(expression, found);
  }
  return found;
}

export function evaluate(expression: string, scope: object): Promise<unknown> {
  return compile(expression).evaluate(scope);
}

/** The value with every `{% ... %}` evaluated against `scope`. */
export async function render(value: unknown, scope: object): Promise<unknown> {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value.trim());
    if (whole && !whole[1]!.includes('%}')) return evaluate(whole[1]!, scope);
    if (!value.includes('{%')) return value;
    const parts: string[] = [];
    let last = 0;
    for (const match of value.matchAll(TEMPLATE)) {
      parts.push(value.slice(last, match.index), stringify(await evaluate(match[1]!, scope)));
      last = match.index + match[0].length;
    }
    parts.push(value.slice(last));
    return parts.join('');
  }
  if (Array.isArray(value)) return Promise.all(value.map((item) => render(item, scope)));
  if (value !== null && typeof value === 'object') {
    const entries = await Promise.all(Object.entries(value).map(async ([key, item]) => [key, await render(item, scope)] as const));
    return Object.fromEntries(entries);
  }
  return value;
}

/** Every expression inside a template value, for checking them when berth.yml is read. */
export function templateExpressions(value: unknown): string[] {
  if (typeof value === 'string') return [...value.matchAll(TEMPLATE)].map((match) => match[1]!);
  if (Array.isArray(value)) return value.flatMap(templateExpressions);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(templateExpressions);
  return [];
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
