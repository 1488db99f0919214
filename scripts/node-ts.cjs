/**
 * Runs the project's TypeScript on plain node: `node --require ./scripts/node-ts.cjs
 * scripts/plan.ts`. `npm run plan` starts this way because tsx's loader also passes
 * every one of the ~1,000 JavaScript files of the Pulumi SDKs through its hooks, which
 * cost more than the whole offline plan of a small stack.
 *
 * Only `.ts` files are touched: each is transpiled by esbuild (types stripped, as
 * tsc's `module: commonjs` would emit it, dynamic `import()` included) and the result
 * cached under node_modules/.cache, keyed by the file's content, the tsconfig and
 * esbuild's version. Stack traces point at the TypeScript (inline source maps).
 */
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");

const root = path.join(__dirname, "..");
const cacheDir = path.join(root, "node_modules", ".cache", "edgeplane-ts");
const { compilerOptions } = JSON.parse(fs.readFileSync(path.join(root, "tsconfig.json"), "utf8"));
const esbuildVersion = JSON.parse(fs.readFileSync(require.resolve("esbuild/package.json"), "utf8")).version;
const keyBase = JSON.stringify({ compilerOptions, esbuildVersion, loader: 1 });

/** @type {typeof import("esbuild") | undefined} */
let esbuild;

function transpile(source, filename) {
  const key = crypto.createHash("sha256").update(keyBase).update("\0").update(filename).update("\0").update(source);
  const cached = path.join(cacheDir, `${key.digest("hex")}.js`);
  try {
    return fs.readFileSync(cached, "utf8");
  } catch {
    // Not cached yet.
  }
  esbuild ??= require("esbuild");
  const { code } = esbuild.transformSync(source, {
    loader: "ts",
    format: "cjs",
    target: "node20",
    sourcefile: filename,
    sourcemap: "inline",
    tsconfigRaw: { compilerOptions },
    // `module: commonjs`: import() of a project file is a require().
    supported: { "dynamic-import": false },
  });
  // Written beside, then renamed: a concurrent plan never reads half a file.
  fs.mkdirSync(cacheDir, { recursive: true });
  const partial = `${cached}.${process.pid}`;
  fs.writeFileSync(partial, code);
  fs.renameSync(partial, cached);
  return code;
}

// Source maps for the project's files only: node would otherwise read and index the
// map of each of the SDKs' files as it loads (a tenth of the start-up), and their
// stack traces would still point at the JavaScript that is installed.
const withSourceMaps = (enabled, compile) => {
  const before = process.sourceMapsEnabled ?? true; // (node < 20.7 cannot tell)
  process.setSourceMapsEnabled(enabled);
  try {
    compile();
  } finally {
    process.setSourceMapsEnabled(before);
  }
};
const compileJs = Module._extensions[".js"];
Module._extensions[".js"] = (module, filename) => withSourceMaps(false, () => compileJs(module, filename));
Module._extensions[".ts"] = (module, filename) =>
  withSourceMaps(true, () => module._compile(transpile(fs.readFileSync(filename, "utf8"), filename), filename));
process.setSourceMapsEnabled(true);
