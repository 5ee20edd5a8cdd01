/** Bundles each function's handler (TypeScript or JavaScript) into one ES module with esbuild. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { BerthError } from '../errors.js';
import type { FunctionSpec } from '../types.js';

/** `berth/client` is bundled from this installation, so handlers need not install Berth to use it. */
/** `berth/client` and `berth/adapters` in a handler resolve to this Berth's own build, installed in the project or not. */
const berthModulesPlugin: Plugin = {
  name: 'berth-modules',
  setup(build) {
    build.onResolve({ filter: /^berth\/(client|adapters)$/ }, (args) => ({
      path: fileURLToPath(new URL(`../${args.path.slice('berth/'.length)}/index.js`, import.meta.url)),
    }));
  },
};

/**
 * Writes `<outDir>/<function>.mjs` for every function and returns their paths.
 * `configFile` is named in errors about a handler setting.
 * Packages stay external: they resolve from the project's node_modules at run time.
 */
export async function bundleFunctions(functions: FunctionSpec[], outDir: string, configFile: string): Promise<Map<string, string>> {
  mkdirSync(outDir, { recursive: true });
  const bundles = new Map<string, string>();
  await Promise.all(
    functions.map(async (fn) => {
      // A provided runtime runs its own bootstrap: nothing to bundle.
      if (fn.runtime === 'provided') return void bundles.set(fn.name, fn.bootstrap!);
      const outfile = path.join(outDir, `${fn.name}.mjs`);
      let exports: string[] | undefined;
      try {
        const result = await build({
          entryPoints: [fn.file],
          outfile,
          bundle: true,
          packages: 'external',
          platform: 'node',
          format: 'esm',
          target: 'node20',
          sourcemap: 'linked',
          metafile: true,
          logLevel: 'silent',
          plugins: [berthModulesPlugin],
          // CommonJS handlers call require(); an ES module needs it created.
          banner: { js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);" },
        });
        exports = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.exports;
      } catch (err) {
        const errors = (err as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }).errors;
        const problem = errors?.length
          ? errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text)).join('; ')
          : String(err);
        throw new BerthError('BERTH_ERR_BUNDLE_FAILED', { fn: fn.name, file: fn.file, problem: `${problem}. Fix the code and start again.` });
      }
      // ES modules declare their exports; CommonJS ones ('default' only) are checked when an environment loads them.
      const isCommonJs = exports?.length === 1 && exports[0] === 'default';
      const entries = [
        { key: 'handler', exportName: fn.exportName },
        { key: 'start', exportName: fn.startExport ?? '' },
      ];
      for (const { key, exportName } of entries) {
        if (!exports || isCommonJs || exportName === '' || exports.includes(exportName)) continue;
        throw new BerthError('BERTH_ERR_HANDLER_NOT_EXPORTED', {
          where: `${path.relative(process.cwd(), configFile) || configFile} functions.${fn.name}.${key}`,
          file: path.relative(path.dirname(configFile), fn.file),
          exportName,
          exports: exports.join(', ') || 'none',
          key,
        });
      }
      bundles.set(fn.name, outfile);
    }),
  );
  return bundles;
}
