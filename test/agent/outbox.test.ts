import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { backoffDelay } from '../../agent/sync/backoff.js'
import { Outbox, type OutboxItem, planDrops, timeOrderedUuid } from '../../agent/sync/outbox.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'interdict-outbox-'))
})
afterEach(async () => {
  await chmod(dir, 0o700).catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

const R = '/api/v1/reports'

describe('outbox', () => {
  it('persists items before sending and keeps them across a reopen, in order, with unique ids', async () => {
    const box = await Outbox.open(dir)
    for (let i = 0; i < 20; i++) await box.enqueue('finding', R, { n: i }, { idField: 'reportId' })
    const files = (await readdir(dir)).filter((n) => n.endsWith('-finding.json'))
    expect(files).toHaveLength(20)
    const again = await Outbox.open(dir)
    const items = await again.items()
    expect(items.map((i) => i.body.n)).toEqual([...Array(20).keys()])
    expect(new Set(items.map((i) => i.id)).size).toBe(20)
    for (const i of items) expect(i.body.reportId).toBe(i.id)
    // New items after a reopen still sort after the old ones, even with a clock that went backwards.
    const skewed = await Outbox.open(dir, { clock: () => 1000 })
    await skewed.enqueue('report', R, { n: 20 })
    expect((await skewed.items()).map((i) => i.body.n)).toEqual([...Array(21).keys()])
  })

  it('gives items UUIDv7 ids (RFC 9562): version 7, variant 10, the time in the first 48 bits, ordered by time', () => {
    const t = Date.UTC(2026, 10, 29, 12, 0, 0, 123)
    const id = timeOrderedUuid(t)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(t)
    // Later milliseconds sort later as strings (what keeps the server's reportId index appending at its end).
    const ids = [t + 1, t + 2, t + 1000, t + 86_400_000].map((ms) => timeOrderedUuid(ms))
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(Array.from({ length: 1000 }, () => timeOrderedUuid(t))).size).toBe(1000)
  })

  it('removes an item only once delivered, sends in order, and stops at the first retry', async () => {
    const box = await Outbox.open(dir)
    for (let i = 0; i < 5; i++) await box.enqueue('report', R, { n: i })
    const sent: number[] = []
    let fail = 3
    const r1 = await box.flush(async (item) => {
      if (item.body.n === fail) return 'retry'
      sent.push(item.body.n as number)
      return 'delivered'
    })
    expect(r1).toMatchObject({ delivered: 3, remaining: 2 })
    expect((await Outbox.open(dir)).size.items).toBe(2)
    fail = -1
    await box.flush(async (item) => {
      sent.push(item.body.n as number)
      return 'delivered'
    })
    expect(sent).toEqual([0, 1, 2, 3, 4])
    expect(box.size.items).toBe(0)
    expect((await readdir(dir)).filter((n) => /^\d{13}-/.test(n))).toEqual([])
  })

  it('sets aside items the server refuses as invalid instead of blocking the queue', async () => {
    const box = await Outbox.open(dir)
    await box.enqueue('report', R, { n: 0 })
    await box.enqueue('report', R, { n: 1 })
    const sent: number[] = []
    await box.flush(async (item: OutboxItem) => {
      if (item.body.n === 0) return 'dead'
      sent.push(1)
      return 'delivered'
    })
    expect(sent).toEqual([1])
    expect(box.dropRecord.dead).toBe(1)
    expect(await readdir(join(dir, 'dead'))).toHaveLength(1)
  })

  it('when full drops heartbeats first, then clean reports, then the oldest findings; never the newest finding', async () => {
    const box = await Outbox.open(dir, { maxItems: 5 })
    await box.enqueue('finding', R, { n: 'f1' })
    await box.enqueue('heartbeat', '/api/v1/heartbeat', { n: 'h1' })
    await box.enqueue('report', R, { n: 'r1' })
    await box.enqueue('finding', R, { n: 'f2' })
    await box.enqueue('heartbeat', '/api/v1/heartbeat', { n: 'h2' })
    await box.enqueue('finding', R, { n: 'f3' }) // drops h1
    await box.enqueue('finding', R, { n: 'f4' }) // drops h2
    await box.enqueue('finding', R, { n: 'f5' }) // drops r1
    expect((await box.items()).map((i) => i.body.n)).toEqual(['f1', 'f2', 'f3', 'f4', 'f5'])
    await box.enqueue('finding', R, { n: 'f6' }) // only findings left: the oldest goes
    expect((await box.items()).map((i) => i.body.n)).toEqual(['f2', 'f3', 'f4', 'f5', 'f6'])
    // A heartbeat into a queue of findings is itself the least valuable: it is not queued.
    expect(await box.enqueue('heartbeat', '/api/v1/heartbeat', { n: 'h3' })).toBeUndefined()
    expect(box.dropRecord.total).toEqual({ heartbeat: 3, report: 1, event: 0, finding: 1 })
    // Drops are persisted and handed out once for the next report.
    const reopened = await Outbox.open(dir, { maxItems: 5 })
    expect(reopened.takeDrops()).toEqual({ heartbeat: 3, report: 1, event: 0, finding: 1 })
    expect(reopened.takeDrops()).toBeUndefined()
  })

  it('bounds bytes too (planDrops is pure)', () => {
    const e = (kind: 'finding' | 'report' | 'heartbeat', size: number) => ({ kind, size })
    const plan = planDrops([e('report', 40), e('finding', 40), e('report', 10)], e('finding', 30), {
      maxItems: 100,
      maxBytes: 100,
    })
    expect(plan).toEqual({ drop: [0], dropIncoming: false })
    expect(planDrops([e('finding', 90)], e('report', 30), { maxItems: 100, maxBytes: 100 })).toEqual({
      drop: [],
      dropIncoming: true,
    })
  })

  it('heartbeats replace older queued heartbeats', async () => {
    const box = await Outbox.open(dir)
    await box.enqueue('heartbeat', '/api/v1/heartbeat', { n: 1 }, { replace: true })
    await box.enqueue('finding', R, { n: 2 })
    await box.enqueue('heartbeat', '/api/v1/heartbeat', { n: 3 }, { replace: true })
    expect((await box.items()).map((i) => i.body.n)).toEqual([2, 3])
  })

  it.skipIf(process.getuid?.() === 0)(
    'keeps items in memory with a clear error when the state dir is read-only',
    async () => {
      const box = await Outbox.open(dir)
      await chmod(dir, 0o500)
      await box.enqueue('finding', R, { n: 1 })
      expect(box.diskError).toMatch(/outbox write failed/)
      expect(box.size).toMatchObject({ items: 1, inMemory: 1 })
    },
  )

  it('keeps items in memory when the disk write fails (directory removed under it)', async () => {
    const box = await Outbox.open(join(dir, 'sub'))
    await rm(join(dir, 'sub'), { recursive: true })
    await box.enqueue('finding', R, { n: 1 })
    expect(box.diskError).toMatch(/outbox write failed \(ENOENT\)/)
    expect(box.size).toMatchObject({ items: 1, inMemory: 1 })
    const sent: unknown[] = []
    await box.flush(async (i) => {
      sent.push(i.body.n)
      return 'delivered'
    })
    expect(sent).toEqual([1])
  })

  it('backs off exponentially with jitter, capped at 5 minutes', () => {
    expect(backoffDelay(1, {}, () => 1)).toBe(1000)
    expect(backoffDelay(4, {}, () => 1)).toBe(8000)
    expect(backoffDelay(30, {}, () => 1)).toBe(300_000)
    expect(backoffDelay(30, {}, () => 0)).toBe(250)
    expect(backoffDelay(5, {}, () => 0.5)).toBe(8000)
  })
})
