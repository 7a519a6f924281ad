// One entry point -> one CommonJS file that a Node single-executable application can run as its main script.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

/**
 * Repo files a binary carries (the agent reads them through agent/embedded.ts): the shipped policy catalogue and
 * the service templates. Keys are repo-relative paths with `/`.
 */
export function embeddedFiles(root = ROOT): Record<string, string> {
  const out: Record<string, string> = {}
  for (const dir of ['policies/catalog', 'build/service']) {
    for (const f of readdirSync(join(root, dir)).sort()) {
      if (/\.(ya?ml|json|service|plist|cmd|cs)$/.test(f)) out[`${dir}/${f}`] = readFileSync(join(root, dir, f), 'utf8')
    }
  }
  return out
}

/**
 * SEA main scripts are CommonJS, where top-level await is a syntax error. An entry point that awaits at top level
 * (agent/cli.ts does) is rewritten: its imports stay at the top (ES imports are hoisted anyway, so moving them is
 * exact) and the rest of the module body runs in an async function. Entry points must not export anything.
 */
export function wrapTopLevelAwait(js: string, file: string): string {
  const imports: string[] = []
  const body = js.replace(/^import\s[^;]*?(?:from\s*)?"[^"]*"(?:\s*with\s*\{[^}]*\})?;[ \t]*$/gm, (m) => {
    imports.push(m)
    return ''
  })
  if (/^export\s/m.test(body)) throw new Error(`${file}: an entry point must not export (it runs as a script)`)
  return [
    ...imports,
    '(async () => {',
    body,
    '})().catch((err) => {',
    '  process.stderr.write("fatal: " + (err && err.stack ? err.stack : err) + "\\n")',
    '  process.exit(70)',
    '});',
  ].join('\n')
}

/** esbuild plugin: rewrite the entry point (see wrapTopLevelAwait). */
function entryPlugin(entry: string): esbuild.Plugin {
  const abs = resolve(entry)
  return {
    name: 'interdict-entry',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (resolve(args.path) !== abs) return undefined
        const ts = readFileSync(args.path, 'utf8')
        const { code } = await esbuild.transform(ts, { loader: 'ts', format: 'esm', sourcefile: args.path })
        return {
          contents: wrapTopLevelAwait(code, relative(ROOT, args.path)),
          loader: 'js',
          resolveDir: join(abs, '..'),
        }
      })
    },
  }
}

// Optional dependencies that are required inside try/catch or only on other platforms: bundle an empty module so the
// binary never tries a non-builtin require (the SEA would warn and fail there).
const EMPTY_MODULES = [
  'osx-temperature-sensor', // systeminformation, macOS CPU temperature
  'supports-color', // debug
  'pino-pretty', // pino, dev transport
  'pg-native', // pg, optional native client
  'bufferutil', // ws
  'utf-8-validate', // ws
  'sqlite3', // kysely dialect probes
  'mysql2',
  'tedious',
  'oracledb',
  'better-sqlite3/build/Debug/better_sqlite3.node',
  // axios -> form-data -> mime-types: a 200 KB table of file types for multipart uploads, which Interdict never sends
  // (form-data then labels a file application/octet-stream). Kept out so the resident agent does not hold it.
  'mime-db',
]

function emptyPlugin(names: readonly string[]): esbuild.Plugin {
  const re = new RegExp(`^(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`)
  return {
    name: 'interdict-empty',
    setup(b) {
      b.onResolve({ filter: re }, (args) => ({ path: args.path, namespace: 'interdict-empty' }))
      b.onLoad({ filter: /.*/, namespace: 'interdict-empty' }, () => ({
        contents: 'module.exports = {}',
        loader: 'js',
      }))
    },
  }
}

/**
 * axios without the web globals. Reading `fetch`, `Request` or `FormData` makes Node load its built-in undici: ~10 MB
 * resident for an agent whose axios always takes the http adapter. Two places in axios read them as it loads: the
 * fetch adapter (replaced by a stub: that adapter is never chosen in Node) and the FormData check in utils.js (left
 * without the constructor: axios then recognises form data by its tag, and Interdict sends none). A change in axios
 * that moves either fails the build here rather than silently costing the memory again.
 */
export function axiosWithoutWebGlobals(): esbuild.Plugin {
  const formData = "const FormDataCtor = typeof G.FormData !== 'undefined' ? G.FormData : undefined;"
  return {
    name: 'interdict-axios-web-globals',
    setup(b) {
      b.onLoad({ filter: /[\\/]axios[\\/]lib[\\/]adapters[\\/]fetch\.js$/ }, () => ({
        contents: 'export const getFetch = () => false\nexport default false\n',
        loader: 'js',
      }))
      b.onLoad({ filter: /[\\/]axios[\\/]lib[\\/]utils\.js$/ }, (args) => {
        const js = readFileSync(args.path, 'utf8')
        if (!js.includes(formData)) throw new Error(`${args.path}: the FormData check changed; update build/bundle.ts`)
        return { contents: js.replace(formData, 'const FormDataCtor = undefined;'), loader: 'js' }
      })
    },
  }
}

/** \uXXXX for every non-ASCII UTF-16 unit: the same meaning in strings, regex literals, identifiers and comments. */
export function asciiOnly(js: string): string {
  return js.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** node-cron's UTC date parts without ICU (agent/utc-date-format.ts says why); every other use gets the real Intl. */
export const INTL_SUBSTITUTE = {
  define: { 'Intl.DateTimeFormat': '__interdictDateTimeFormat' },
  inject: [join(ROOT, 'agent/utc-date-format.ts')],
}

export interface BundleResult {
  file: string
  js: string
  bytes: number
  warnings: string[]
}

export async function bundle(
  entry: string,
  outfile: string,
  extraPlugins: esbuild.Plugin[] = [],
  extraDefines: Record<string, string> = {},
): Promise<BundleResult> {
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minifySyntax: true,
    minifyWhitespace: true,
    keepNames: false,
    legalComments: 'eof',
    logLevel: 'silent',
    write: false,
    // ESM packages (ps-list, node-cron) compute their own path from import.meta.url at load; CJS has no import.meta.
    define: {
      'import.meta.url': '__interdict_import_meta_url',
      'import.meta.dirname': '__dirname',
      'import.meta.filename': '__filename',
      __INTERDICT_EMBEDDED__: JSON.stringify(embeddedFiles()),
      ...INTL_SUBSTITUTE.define,
      ...extraDefines,
    },
    inject: INTL_SUBSTITUTE.inject,
    banner: { js: 'var __interdict_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [entryPlugin(join(ROOT, entry)), emptyPlugin(EMPTY_MODULES), axiosWithoutWebGlobals(), ...extraPlugins],
  })
  const out = result.outputFiles[0]
  if (!out || result.outputFiles.length !== 1) throw new Error(`esbuild wrote ${result.outputFiles.length} files`)
  // One non-ASCII character makes V8 hold the whole source as a two-byte string: 3.8 MB instead of 1.9 for the agent.
  // esbuild escapes strings but leaves regex literals (systeminformation has Cyrillic ones), so escape what is left.
  const js = asciiOnly(out.text)
  mkdirSync(dirname(outfile), { recursive: true })
  writeFileSync(outfile, js)
  const warnings = result.warnings.map((w) => `${w.location?.file ?? ''}:${w.location?.line ?? ''} ${w.text}`)
  return { file: outfile, js, bytes: js.length, warnings }
}
