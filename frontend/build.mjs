// Builds the dashboard into app/dashboard/static/ (committed: a fresh clone serves the page without Node).
// `make dashboard` runs `npm ci && npm run build`; the output is the same for the same lockfile.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "app", "dashboard", "static");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(here, "src", "main.ts")],
  outfile: join(out, "app.js"),
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: true,
  legalComments: "none", // the licences are copied whole, below
  sourcemap: false,
  logLevel: "warning",
});
await build({
  entryPoints: [join(here, "src", "style.css")],
  outfile: join(out, "style.css"),
  bundle: true,
  minify: true,
  logLevel: "warning",
});
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));

// The licences of what the bundle contains, beside it.
const vendored = [
  ["chart.js", "node_modules/chart.js/package.json", "node_modules/chart.js/LICENSE.md"],
  ["@kurkle/color", "node_modules/@kurkle/color/package.json", "node_modules/@kurkle/color/LICENSE.md"],
];
const notice = ["Third-party code bundled into app.js", ""];
for (const [name, manifest, licence] of vendored) {
  const { version, license } = JSON.parse(readFileSync(join(here, manifest), "utf8"));
  notice.push(`${"=".repeat(78)}`, `${name} ${version} (${license})`, `${"=".repeat(78)}`, "");
  notice.push(readFileSync(join(here, licence), "utf8").trim(), "");
}
writeFileSync(join(out, "THIRD-PARTY-LICENSES.txt"), notice.join("\n"));
