// The SQLite report writer's threads: batches commit on the writer thread while the checkpointer thread copies the
// WAL into the database file beside it, and the WAL starts over at the writer's threshold instead of growing.
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { timeOrderedUuid } from '../../agent/sync/outbox.js'
import type { ReportBody } from '../../server/protocol.js'
import { openStorage, type Storage } from '../../server/storage/db.js'
import type { ReportWrite } from '../../server/storage/sqlite-ingest.js'
import { tempDir, waitFor } from '../helpers.js'
import { finding } from './helpers.js'

function reportWrite(deviceId: string, i: number): ReportWrite {
  const body = {
    reportId: timeOrderedUuid(),
    bundleVersion: 1,
    scannedAt: new Date().toISOString(),
    findings: [finding('f1'), finding('f2'), finding('f3')],
    actions: [],
    inventory: { processes: 312, packages: 1480 },
  } as unknown as ReportBody
  const at = Date.now()
  return {
    kind: 'report',
    deviceId,
    class: 'standard',
    body,
    status: 'noncompliant',
    open: 3,
    findingStatus: ['open', 'open', 'open'],
    actionsByFinding: new Map(),
    scannedAt: at + i,
    at,
  }
}

describe('SQLite report writer', () => {
  let dir: ReturnType<typeof tempDir>
  let storage: Storage | undefined
  afterEach(async () => {
    await storage?.close()
    storage = undefined
    dir.cleanup()
  })

  it('copies the WAL into the database file beside the writer, and the WAL starts over at its threshold', async () => {
    dir = tempDir('interdict-ingest-')
    storage = await openStorage({ dataDir: dir.path }, (err) => {
      throw err
    })
    expect(storage.ingest?.mode).toBe('thread')
    const file = join(dir.path, 'interdict.db')
    const size = (f: string) => statSync(f).size
    // Let the migrations' pages reach the file first, so growth below comes from the reports.
    await sleep(200)
    const before = size(file)

    // A few batches: far below the writer's own threshold, so only the checkpointer thread can copy them over.
    for (let b = 0; b < 5; b++) await storage.ingest!.write(Array.from({ length: 50 }, (_, i) => reportWrite('d1', i)))
    await waitFor(() => size(file) > before + 100_000, 5000)

    // Up to the writer's threshold (~64 MiB of WAL), then as much again: the WAL file stops growing, it starts over.
    let written = 250
    const batch = async () => {
      const outcomes = await storage!.ingest!.write(Array.from({ length: 200 }, (_, i) => reportWrite(`d${i % 50}`, i)))
      expect(outcomes.every((o) => o === 'stored')).toBe(true)
      written += 200
    }
    while (size(`${file}-wal`) < 60 * 1024 * 1024 && written < 100_000) await batch()
    expect(size(`${file}-wal`)).toBeGreaterThanOrEqual(60 * 1024 * 1024)
    for (let k = written; k > 0; k -= 200) {
      await batch()
      expect(size(`${file}-wal`)).toBeLessThan(70 * 1024 * 1024)
    }
    const n = await storage.db
      .selectFrom('reports')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    expect(Number(n.n)).toBe(written)
  }, 120_000)
})
