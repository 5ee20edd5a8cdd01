import type { FunctionError } from '../../types.js';

/** Shapes any thrown or passed error value the way Lambda's Node runtime reports it. */
export function toFunctionError(value: unknown): FunctionError {
  if (value instanceof Error) {
    return {
      errorType: value.name || 'Error',
      errorMessage: value.message,
      trace: typeof value.stack === 'string' ? value.stack.split('\n') : [],
    };
  }
  if (typeof value === 'string') return { errorType: 'string', errorMessage: value, trace: [] };
  let message: string;
  try {
    message = JSON.stringify(value) ?? String(value);
  } catch {
    message = String(value);
  }
  return { errorType: typeof value, errorMessage: message, trace: [] };
}

/** Lambda reports an unhandled rejection under its own error type, naming the reason. */
export function rejectionError(reason: unknown): FunctionError {
  const error = toFunctionError(reason);
  return {
    errorType: 'Runtime.UnhandledPromiseRejection',
    errorMessage: error.errorType === 'string' ? error.errorMessage : `${error.errorType}: ${error.errorMessage}`,
    trace: error.trace,
  };
}

/** Lambda's init error for a module that did not load: its syntax, or anything its top level threw. */
export function importError(err: unknown): FunctionError {
  const error = toFunctionError(err);
  return { ...error, errorType: error.errorType === 'SyntaxError' ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError' };
}

/** Lambda's init error for a handler (or service start) the module does not export. */
export function handlerNotFound(name: string): FunctionError {
  return { errorType: 'Runtime.HandlerNotFound', errorMessage: `${name} is undefined or not exported`, trace: [] };
}

/** Lambda's error for a result that cannot be serialised (a cycle, a BigInt). */
export function marshalError(err: unknown): FunctionError {
  return { errorType: 'Runtime.MarshalError', errorMessage: `Unable to marshal response: ${err instanceof Error ? err.message : String(err)}`, trace: [] };
}
