import { execFileSync } from 'node:child_process'
import { utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  cacheStats,
  clearCache,
  createFileInspector,
  FileCache,
  MarkerScanner,
  markerBytes,
} from '../../agent/collectors/file-inspector.js'
import { makeNeeds, put, SLEEP, sha256, sleepCopy, tempDir } from './linux-helpers.js'

let tmp: ReturnType<typeof tempDir>
beforeEach(() => {
  tmp = tempDir()
})
afterEach(() => tmp.cleanup())

describe('markerBytes', () => {
  it('reads hex markers (spaces and colons ignored) and UTF-8 text', () => {
    expect(markerBytes('hex:54 44:46 24')).toEqual(Buffer.from('TDF$'))
    expect(markerBytes('Telegram Desktop')).toEqual(Buffer.from('Telegram Desktop'))
    expect(markerBytes('ü')).toEqual(Buffer.from([0xc3, 0xbc]))
    expect(() => markerBytes('hex:abc')).toThrow(/invalid hex marker/)
  })
})

describe('MarkerScanner', () => {
  it('finds a marker at every possible split across chunks of every size', () => {
    const data = Buffer.from('xxxxxxxxxxMARKER-ONEyyyyyyyyyyyTDF$zz')
    for (let size = 1; size <= data.length; size++) {
      const s = new MarkerScanner(['MARKER-ONE', 'hex:54444624', 'absent'])
      for (let i = 0; i < data.length; i += size) s.push(data.subarray(i, i + size))
      expect([...s.found].sort(), `chunk size ${size}`).toEqual(['MARKER-ONE', 'hex:54444624'])
      expect(s.done).toBe(false)
    }
  })

  it('is done once every marker is found, and ignores malformed markers', () => {
    const s = new MarkerScanner(['abc', 'hex:zz'])
    s.push(Buffer.from('--abc--'))
    expect(s.done).toBe(true)
  })
})

describe('createFileInspector', () => {
  it('hashes like crypto, reads an unchanged file once and re-reads when mtime changes', async () => {
    const file = join(tmp.dir, 'bin')
    sleepCopy(file)
    const cache = new FileCache()
    const files = createFileInspector(makeNeeds({ hashes: true }), { cache })
    const first = await files.inspect(file)
    expect(first).toEqual({ sha256: sha256(SLEEP) })
    expect(cache.stats()).toMatchObject({ reads: 1, misses: 1, hits: 0 })
    expect(await files.inspect(file)).toEqual(first)
    expect(cache.stats()).toMatchObject({ reads: 1, hits: 1 })

    // Same size, new mtime: a new identity, so it is read again.
    utimesSync(file, new Date(), new Date(Date.now() + 5000))
    await files.inspect(file)
    expect(cache.stats()).toMatchObject({ reads: 2, misses: 2 })

    // Changed content (and size): the new hash.
    writeFileSync(file, 'changed')
    expect(await files.inspect(file)).toEqual({ sha256: sha256(file) })
  })

  it('finds text and hex markers, including across chunk boundaries', async () => {
    const file = join(tmp.dir, 'data')
    // With 16-byte chunks the text marker starts at offset 12 and straddles the first seam.
    put(file, Buffer.concat([Buffer.from('0123456789abTELEGRAM-MARK'), Buffer.alloc(40), Buffer.from('TDF$')]))
    const needs = makeNeeds({ markers: ['TELEGRAM-MARK', 'hex:54444624', 'not-there'] })
    const files = createFileInspector(needs, { cache: new FileCache(), chunkSize: 16 })
    expect(await files.inspect(file)).toEqual({ markers: ['TELEGRAM-MARK', 'hex:54444624'] })
  })

  it('finds a marker appended to a real 40 KB binary, and reports none in the original', async () => {
    const marked = join(tmp.dir, 'marked')
    sleepCopy(marked, 'Telegram Desktop build marker')
    const needs = makeNeeds({ hashes: true, markers: ['Telegram Desktop build marker'] })
    const files = createFileInspector(needs, { cache: new FileCache(), chunkSize: 4096 })
    expect(await files.inspect(marked)).toEqual({ sha256: sha256(marked), markers: ['Telegram Desktop build marker'] })
    expect(await files.inspect(SLEEP)).toEqual({ sha256: sha256(SLEEP) })
  })

  it('stops reading early when only markers are needed and all are found', async () => {
    const file = join(tmp.dir, 'big')
    put(file, Buffer.concat([Buffer.from('MARK'), Buffer.alloc(1024 * 1024)]))
    const cache = new FileCache()
    const files = createFileInspector(makeNeeds({ markers: ['MARK'] }), { cache, chunkSize: 64 * 1024 })
    expect(await files.inspect(file)).toEqual({ markers: ['MARK'] })
    expect(cache.stats().bytesRead).toBe(64 * 1024)
  })

  it('reads only what the cache lacks when needs grow', async () => {
    const file = join(tmp.dir, 'f')
    put(file, 'hello MARK world')
    const cache = new FileCache()
    await createFileInspector(makeNeeds({ hashes: true }), { cache }).inspect(file)
    const both = createFileInspector(makeNeeds({ hashes: true, markers: ['MARK'] }), { cache })
    expect(await both.inspect(file)).toEqual({ sha256: sha256(file), markers: ['MARK'] })
    expect(await both.inspect(file)).toEqual({ sha256: sha256(file), markers: ['MARK'] })
    expect(cache.stats()).toMatchObject({ reads: 2, hits: 1 })
  })

  it('shares one read among concurrent inspections of the same file', async () => {
    const file = join(tmp.dir, 'shared')
    sleepCopy(file)
    const cache = new FileCache()
    const files = createFileInspector(makeNeeds({ hashes: true }), { cache })
    const results = await Promise.all(Array.from({ length: 20 }, () => files.inspect(file)))
    expect(new Set(results.map((r) => r?.sha256))).toEqual(new Set([sha256(SLEEP)]))
    expect(cache.stats().reads).toBe(1)
  })

  it('returns undefined, never throws, for missing, non-regular and too large files', async () => {
    const files = createFileInspector(makeNeeds({ hashes: true }), { cache: new FileCache(), maxFileSize: 10 })
    const fifo = join(tmp.dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    const big = join(tmp.dir, 'big')
    put(big, 'more than ten bytes')
    expect(await files.inspect(join(tmp.dir, 'missing'))).toBeUndefined()
    expect(await files.inspect(tmp.dir)).toBeUndefined()
    expect(await files.inspect(big)).toBeUndefined()
    expect(await files.inspect(fifo)).toBeUndefined()
  })

  it('skips the read entirely when nothing is needed', async () => {
    const cache = new FileCache()
    const files = createFileInspector(makeNeeds(), { cache })
    expect(await files.inspect(SLEEP)).toEqual({})
    expect(await files.inspect('/does/not/exist')).toEqual({})
    expect(cache.stats()).toMatchObject({ reads: 0, misses: 0 })
  })

  it('keeps the cache bounded (least recently used goes first)', async () => {
    const cache = new FileCache(2)
    const files = createFileInspector(makeNeeds({ hashes: true }), { cache })
    for (const n of ['a', 'b', 'c']) {
      put(join(tmp.dir, n), n)
      await files.inspect(join(tmp.dir, n))
    }
    expect(cache.stats().entries).toBe(2)
    await files.inspect(join(tmp.dir, 'a')) // evicted: read again
    expect(cache.stats().reads).toBe(4)
  })

  it('uses the process-wide cache by default; clearCache resets it', async () => {
    clearCache()
    const files = createFileInspector(makeNeeds({ hashes: true }))
    await files.inspect(SLEEP)
    await createFileInspector(makeNeeds({ hashes: true })).inspect(SLEEP)
    expect(cacheStats()).toMatchObject({ reads: 1, hits: 1, entries: 1 })
    clearCache()
    expect(cacheStats()).toMatchObject({ reads: 0, entries: 0 })
  })
})
