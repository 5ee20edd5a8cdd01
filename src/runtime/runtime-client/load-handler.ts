/**
 * Loads `_HANDLER` (`dir/file.export`, or a nested `file.a.handler`) from the task root as Lambda's
 * Node runtime does: `file.js`, `file.mjs` or `file.cjs`, ESM or CommonJS. What goes wrong is an
 * init error with Lambda's type, for `/init/error`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FunctionError } from '../../types.js';
import { findExport } from '../handler-export.js';
import { handlerNotFound, importError } from '../sandbox/errors.js';

export type Handler = (event: unknown, context: unknown, callback: unknown) => unknown;

export class InitError extends Error {
  constructor(readonly error: FunctionError) {
    super(error.errorMessage);
  }
}

const EXTENSIONS = ['.js', '.mjs', '.cjs'];

export async function loadHandler(taskRoot: string, handlerName: string): Promise<Handler> {
  const dir = path.dirname(handlerName);
  const base = path.basename(handlerName);
  const dot = base.indexOf('.');
  if (dot <= 0 || dot === base.length - 1) {
    throw new InitError({ errorType: 'Runtime.MalformedHandlerName', errorMessage: `Bad handler "${handlerName}": expected file.export, e.g. index.handler`, trace: [] });
  }
  const moduleName = base.slice(0, dot);
  const exportPath = base.slice(dot + 1);
  const stem = path.resolve(taskRoot, dir, moduleName);
  const file = EXTENSIONS.map((ext) => stem + ext).find((candidate) => existsSync(candidate));
  if (!file) {
    throw new InitError({ errorType: 'Runtime.ImportModuleError', errorMessage: `Error: Cannot find module '${path.join(dir, moduleName)}' (looked for ${EXTENSIONS.map((ext) => moduleName + ext).join(', ')} in ${path.resolve(taskRoot, dir)})`, trace: [] });
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new InitError(importError(err));
  }
  const handler = findExport(mod, exportPath);
  if (!handler) throw new InitError(handlerNotFound(handlerName));
  return handler as Handler;
}
