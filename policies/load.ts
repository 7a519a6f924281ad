// Loading policy files: YAML (or JSON) text -> validated PolicyFile, with every problem located by file, line and field.
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Compile } from 'typebox/compile'
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml'
import { PolicyFile } from './schema.js'
import { broadRuleProblems } from './validate.js'

export interface PolicyIssue {
  file: string
  line?: number
  column?: number
  /** JSON-pointer-like path of the field, e.g. /apps/0/match/network/cidrs/1 */
  path: string
  message: string
}

export class PolicyError extends Error {
  constructor(readonly issues: PolicyIssue[]) {
    super(issues.map(formatIssue).join('\n'))
    this.name = 'PolicyError'
  }
}

export function formatIssue(i: PolicyIssue): string {
  const where = i.line ? `${i.file}:${i.line}:${i.column ?? 1}` : i.file
  return `${where}: ${i.path || '/'}: ${i.message}`
}

const checkPolicy = Compile(PolicyFile)
const MAX_POLICY_BYTES = 4 * 1024 * 1024

function segments(path: string): (string | number)[] {
  return path
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')))
}

/** Find where a field is in the YAML source; for a key that should not be there, point at the key itself. */
function locate(doc: Document, counter: LineCounter, path: string, key?: string) {
  let node = doc.getIn(segments(path), true) as Node | undefined
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key)
    if (pair && isScalar(pair.key)) node = pair.key
  }
  // Walk up to the nearest ancestor that exists (a missing required field is reported at its parent).
  let parts = segments(path)
  while (!node?.range && parts.length > 0) {
    parts = parts.slice(0, -1)
    node = doc.getIn(parts, true) as Node | undefined
  }
  const offset = node?.range?.[0] ?? 0
  const pos = counter.linePos(offset)
  return { line: pos.line, column: pos.col }
}

/** Parse and validate one policy document. Throws PolicyError listing every problem found. */
export function parsePolicy(text: string, file: string): PolicyFile {
  if (text.length > MAX_POLICY_BYTES)
    throw new PolicyError([{ file, path: '', message: 'policy file is larger than 4 MiB' }])
  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new PolicyError(
      doc.errors.map((e) => {
        const pos = counter.linePos(e.pos[0])
        return { file, line: pos.line, column: pos.col, path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` }
      }),
    )
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    // yaml throws ReferenceError for unresolved aliases and alias bombs; both are the file's fault, not ours.
    throw new PolicyError([{ file, path: '', message: `YAML aliases: ${(err as Error).message}` }])
  }
  if (!checkPolicy.Check(value)) {
    const seen = new Set<string>()
    const issues: PolicyIssue[] = []
    for (const e of checkPolicy.Errors(value)) {
      // `additionalProperties: false` reports twice (the property and the object); keep the useful one.
      if (e.keyword === 'boolean' && e.schemaPath.endsWith('additionalProperties')) continue
      let path = e.instancePath
      let message = e.message
      let key: string | undefined
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as { additionalProperties?: string[] }).additionalProperties ?? []
        key = extra[0]
        message = `unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => `"${k}"`).join(', ')}`
      } else if (e.keyword === 'required') {
        const req = (e.params as { requiredProperties?: string[] }).requiredProperties ?? []
        message = `missing required field${req.length > 1 ? 's' : ''} ${req.map((k) => `"${k}"`).join(', ')}`
      } else if (e.keyword === 'pattern') {
        message = `${message}`
      }
      if (key) path = `${path}/${key}`
      const id = `${path}|${message}`
      if (seen.has(id)) continue
      seen.add(id)
      issues.push({ file, path, message, ...locate(doc, counter, key ? e.instancePath : path, key) })
    }
    throw new PolicyError(issues.slice(0, 50))
  }
  const problems = broadRuleProblems(value)
  if (problems.length > 0) {
    throw new PolicyError(
      problems.map((p) => ({ file, path: p.path, message: p.message, ...locate(doc, counter, p.path) })),
    )
  }
  return value
}

const POLICY_EXT = /\.(ya?ml|json)$/i

/** Load a policy file, or every .yaml/.yml/.json file in a directory (sorted, so results are reproducible). */
export async function loadPolicies(fileOrDir: string): Promise<PolicyFile[]> {
  const st = await stat(fileOrDir)
  const files = st.isDirectory()
    ? (await readdir(fileOrDir))
        .filter((f) => POLICY_EXT.test(f))
        .sort()
        .map((f) => join(fileOrDir, f))
    : [fileOrDir]
  if (files.length === 0)
    throw new PolicyError([{ file: fileOrDir, path: '', message: 'no policy files (.yaml, .yml, .json) here' }])
  const issues: PolicyIssue[] = []
  const policies: PolicyFile[] = []
  for (const file of files) {
    try {
      policies.push(parsePolicy(await readFile(file, 'utf8'), file))
    } catch (err) {
      if (err instanceof PolicyError) issues.push(...err.issues)
      else throw err
    }
  }
  if (issues.length > 0) throw new PolicyError(issues)
  const ids = new Map<string, number>()
  for (const p of policies) ids.set(p.id, (ids.get(p.id) ?? 0) + 1)
  const dup = [...ids].filter(([, n]) => n > 1).map(([id]) => id)
  if (dup.length > 0)
    throw new PolicyError([
      { file: fileOrDir, path: '/id', message: `policy id used more than once: ${dup.join(', ')}` },
    ])
  return policies
}
