// Module hooks: load the TypeScript sources that smithers-orchestrator publishes (its
// `./pi-plugin` export is `src/pi-plugin/index.ts`) by stripping their types with the
// TypeScript compiler, unchanged otherwise. Node 20 cannot run .ts files itself.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import ts from "typescript";

export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const output = ts.transpileModule(await readFile(path, "utf8"), {
    fileName: path,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: false,
    },
  });
  return { format: "module", source: output.outputText, shortCircuit: true };
}
