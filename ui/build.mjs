// Builds the web UI into ../src/flowplane/ui/static/ (committed: a pip-installed server needs
// no Node.js). The output is deterministic for a given package-lock.json, which
// tests/e2e/test_ui_bundle.py checks by rebuilding into a temporary folder.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, "..", "src", "flowplane", "ui", "static"));
mkdirSync(join(out, "swagger"), { recursive: true });

await build({
  entryPoints: { app: join(here, "src", "main.tsx"), style: join(here, "src", "style.css") },
  outdir: out,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
});
for (const name of ["index.html", "favicon.svg"]) {
  copyFileSync(join(here, "src", name), join(out, name));
}
const swagger = join(here, "node_modules", "swagger-ui-dist");
for (const name of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
  copyFileSync(join(swagger, name), join(out, "swagger", name));
}
