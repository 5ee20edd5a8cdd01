/**
 * Finds a handler in an imported module the way Lambda's Node runtime does: `handler` or a nested
 * `a.b.handler`, among the named exports or, for a CommonJS module, on its `module.exports`.
 */
export function findExport(mod: Record<string, unknown>, name: string): Function | undefined {
  const walk = (from: unknown) => name.split('.').reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], from);
  const found = walk(mod) ?? walk(mod.default);
  return typeof found === 'function' ? found : undefined;
}
