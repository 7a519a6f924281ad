// The calibration server of bench/server/baseline.ts: bare Fastify (no logging, no auth, no hooks) with the report
// schema validating a POST that makes one SQLite insert, and a GET answering a constant. What this machine can do
// at all, to read the real server's figures against.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import Fastify from 'fastify'
import { ReportBody } from '../../server/protocol.js'

const db = new Database(join(mkdtempSync(join(tmpdir(), 'interdict-baseline-')), 'bare.db'))
db.pragma('journal_mode = WAL')
db.pragma('synchronous = NORMAL')
db.exec('create table reports (report_id text primary key, body text not null)')
const insert = db.prepare('insert into reports (report_id, body) values (?, ?)')

const app = Fastify({ logger: false, bodyLimit: 1 << 20 })
app.post('/r', { schema: { body: ReportBody } }, async (req, reply) => {
  const b = req.body as ReportBody
  insert.run(b.reportId, JSON.stringify(b.findings))
  return reply.code(202).send({ ok: true })
})
app.get('/p', async () => ({ ok: true }))
const address = await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`${JSON.stringify({ address })}\n`)
