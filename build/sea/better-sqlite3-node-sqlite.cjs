// The server binary's stand-in for better-sqlite3 (a native addon built per Node ABI, which a single-file binary
// cannot load from node_modules): the same small API surface that server/storage/db.ts and Kysely's SqliteDialect use,
// on Node 22's built-in node:sqlite (same SQLite engine family, no addon). See build/README.md.
'use strict'

// node:sqlite warns once (when loaded) that it is experimental; the server relies on it deliberately.
const emitWarning = process.emitWarning
process.emitWarning = (warning, ...rest) => {
  const text = typeof warning === 'string' ? warning : warning?.message
  if (typeof text === 'string' && text.startsWith('SQLite is an experimental feature')) return
  return emitWarning.call(process, warning, ...rest)
}

const { DatabaseSync } = require('node:sqlite')

// Parameters as better-sqlite3 takes them: one array, or each as its own argument.
const args = (params) => (params.length === 1 && Array.isArray(params[0]) ? params[0] : params)

class Statement {
  constructor(stmt) {
    this.stmt = stmt
    this.reader = stmt.columns().length > 0
    this.first = false
  }
  /** .pluck(): rows become their first column's value. */
  pluck(on = true) {
    this.first = on
    return this
  }
  row(r) {
    if (!r) return r
    return this.first ? Object.values(r)[0] : { ...r }
  }
  all(...params) {
    return this.stmt.all(...args(params)).map((r) => this.row(r))
  }
  get(...params) {
    return this.row(this.stmt.get(...args(params)))
  }
  run(...params) {
    const r = this.stmt.run(...args(params))
    return { changes: Number(r.changes), lastInsertRowid: r.lastInsertRowid }
  }
  *iterate(...params) {
    for (const row of this.stmt.iterate(...args(params))) yield this.row(row)
  }
}

class Database {
  constructor(file) {
    this.db = new DatabaseSync(file === undefined ? ':memory:' : file)
    this.open = true
  }
  prepare(sql) {
    return new Statement(this.db.prepare(sql))
  }
  exec(sql) {
    this.db.exec(sql)
    return this
  }
  pragma(text, opts) {
    const rows = this.db
      .prepare(`PRAGMA ${text}`)
      .all()
      .map((r) => ({ ...r }))
    if (opts?.simple) return rows[0] ? Object.values(rows[0])[0] : undefined
    return rows
  }
  /** fn in a transaction; like better-sqlite3, `.deferred`, `.immediate` and `.exclusive` pick the BEGIN. */
  transaction(fn) {
    const run =
      (begin) =>
      (...a) => {
        this.db.exec(begin)
        try {
          const out = fn(...a)
          this.db.exec('COMMIT')
          return out
        } catch (err) {
          this.db.exec('ROLLBACK')
          throw err
        }
      }
    return Object.assign(run('BEGIN'), {
      deferred: run('BEGIN DEFERRED'),
      immediate: run('BEGIN IMMEDIATE'),
      exclusive: run('BEGIN EXCLUSIVE'),
    })
  }
  close() {
    if (this.open) this.db.close()
    this.open = false
    return this
  }
}

module.exports = Database
module.exports.default = Database
