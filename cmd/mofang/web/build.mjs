// Builds MoFang's pages into dist/: src/main.js (with mpegts.js and
// src/style.css) bundled by esbuild into content-hashed files under
// dist/assets/, src/public/ copied as is, and src/index.html pointing at
// the hashed files. `npm ci && npm run build`; the Go package embeds dist/.
//
// dist/ is committed, so a plain `go build` serves the pages. The build
// records the SHA-256 of every input in dist/.sources.sha256 (sha256sum's
// format: `sha256sum -c dist/.sources.sha256` checks it here), and a Go
// test fails when the sources no longer match the committed bundle.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const src = path.join(here, 'src');
const dist = path.join(here, 'dist');

// Empty dist/ but keep .gitkeep (git keeps the folder, Go embeds it).
await mkdir(dist, { recursive: true });
for (const name of await readdir(dist)) {
  if (name !== '.gitkeep') await rm(path.join(dist, name), { recursive: true, force: true });
}

const result = await esbuild.build({
  entryPoints: [path.join(src, 'main.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome90', 'safari15', 'firefox90'],
  outdir: path.join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

// The entry's JS and the CSS esbuild gathered from its imports.
let js, css;
for (const [out, meta] of Object.entries(result.metafile.outputs)) {
  if (meta.entryPoint && out.endsWith('.js')) js = out;
  if (out.endsWith('.css')) css = out;
}
if (!js || !css) throw new Error('build: no JS or CSS output');
const url = (out) => '/' + path.relative(dist, path.resolve(here, out)).split(path.sep).join('/');

await cp(path.join(src, 'public'), dist, { recursive: true });
const html = (await readFile(path.join(src, 'index.html'), 'utf8'))
  .replace('%MAIN_JS%', url(js))
  .replace('%MAIN_CSS%', url(css));
await writeFile(path.join(dist, 'index.html'), html);

// The inputs of the build, by slash path relative to this folder, in byte
// order (web.go's test reads the same files).
async function inputs(dir) {
  const out = [];
  for (const e of await readdir(path.join(here, dir), { withFileTypes: true })) {
    const rel = dir + '/' + e.name;
    if (e.isDirectory()) out.push(...await inputs(rel));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}
const files = ['build.mjs', 'package.json', 'package-lock.json', ...await inputs('src')]
  .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
let sums = '';
for (const f of files) {
  sums += createHash('sha256').update(await readFile(path.join(here, f))).digest('hex') + '  ' + f + '\n';
}
await writeFile(path.join(dist, '.sources.sha256'), sums);
console.log(`built ${url(js)} ${url(css)}`);
