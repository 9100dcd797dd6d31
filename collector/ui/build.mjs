// Builds the web UI into collector/ui/dist: one script and one stylesheet
// named after their content hash (served as immutable), and index.html that
// names them. Run by `npm run build`, `npm install` (prepare) and the tests'
// global setup; the collector serves whatever is in dist/ when it starts.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'dist');

export async function buildUi({ quiet = false } = {}) {
  fs.rmSync(out, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: [path.join(here, 'src/main.ts')],
    bundle: true,
    minify: process.env.UI_NO_MINIFY ? false : true,
    format: 'iife',
    target: ['es2020'],
    outdir: out,
    entryNames: 'app-[hash]',
    metafile: true,
    legalComments: 'linked',
    logLevel: quiet ? 'error' : 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js || !css) throw new Error(`ui build: expected a .js and a .css, got ${outputs.join(', ')}`);
  const html = fs.readFileSync(path.join(here, 'index.html'), 'utf8').replace('{{js}}', js).replace('{{css}}', css);
  fs.writeFileSync(path.join(out, 'index.html'), html);
  if (!quiet) {
    const size = (f) => (fs.statSync(path.join(out, f)).size / 1024).toFixed(1);
    console.log(`ui: ${js} ${size(js)} KiB, ${css} ${size(css)} KiB -> ${path.relative(process.cwd(), out)}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  buildUi().catch((err) => {
    console.error(err.message ?? err);
    process.exit(1);
  });
}
