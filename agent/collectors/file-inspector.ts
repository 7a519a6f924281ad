// Reads an executable once to compute what the policy asks about its bytes (sha256, binary markers). Results are
// cached by file identity so the same binary behind hundreds of processes, and across scans, is read only once.
import { createHash } from 'node:crypto'
import { constants, type Stats } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import type { CollectNeeds, FileFacts, FileInspector } from './types.js'

export const DEFAULT_MAX_FILE_SIZE = 1024 ** 3
const DEFAULT_MAX_ENTRIES = 20_000
const CHUNK = 256 * 1024

export interface FileInspectorOptions {
  /** Larger files are not read (inspect returns undefined). Default 1 GiB. */
  maxFileSize?: number
  /** Cache to use; default the process-wide one, so facts survive from one scan to the next. */
  cache?: FileCache
  /** Read buffer size; tests shrink it to exercise markers that span chunk boundaries. */
  chunkSize?: number
}

export interface FileCacheStats {
  /** Files actually opened and read. */
  reads: number
  bytesRead: number
  hits: number
  misses: number
  /** Files that could not be inspected (missing, unreadable, not a regular file, too large). */
  failures: number
  entries: number
}

interface Entry {
  sha256?: string
  /** Every marker searched for so far, with whether it was found. */
  markers: Map<string, boolean>
}

/** Bounded LRU of file facts keyed by (dev, ino, size, mtimeMs). */
export class FileCache {
  private readonly map = new Map<string, Entry>()
  private readonly counters = { reads: 0, bytesRead: 0, hits: 0, misses: 0, failures: 0 }
  /** Reads in flight, so concurrent inspections of one binary share a single read. */
  readonly inflight = new Map<string, Promise<Entry | undefined>>()

  private active = 0
  private readonly waiting: (() => void)[] = []

  /** maxReads bounds concurrent file reads: each holds a chunk buffer, and the disk gains nothing from more. */
  constructor(
    readonly maxEntries = DEFAULT_MAX_ENTRIES,
    readonly maxReads = 4,
  ) {}

  async withReadSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.maxReads) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    try {
      return await fn()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }

  get(key: string): Entry | undefined {
    const e = this.map.get(key)
    if (e) {
      this.map.delete(key)
      this.map.set(key, e)
    }
    return e
  }

  set(key: string, e: Entry) {
    this.map.delete(key)
    this.map.set(key, e)
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value
      if (oldest === undefined) break
      this.map.delete(oldest)
    }
  }

  count(what: 'reads' | 'hits' | 'misses' | 'failures', bytes = 0) {
    this.counters[what]++
    this.counters.bytesRead += bytes
  }

  stats(): FileCacheStats {
    return { ...this.counters, entries: this.map.size }
  }

  clear() {
    this.map.clear()
    this.inflight.clear()
    for (const k of Object.keys(this.counters) as (keyof typeof this.counters)[]) this.counters[k] = 0
  }
}

const defaultCache = new FileCache()

/** Empty the process-wide cache and reset its counters. */
export function clearCache() {
  defaultCache.clear()
}

/** Counters of the process-wide cache. */
export function cacheStats(): FileCacheStats {
  return defaultCache.stats()
}

/** A policy marker as bytes: `hex:54 44 46 24` (spaces and colons ignored) or UTF-8 text. */
export function markerBytes(marker: string): Buffer {
  if (marker.startsWith('hex:')) {
    const hex = marker.slice(4).replace(/[\s:]/g, '')
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new Error(`invalid hex marker: ${marker}`)
    return Buffer.from(hex, 'hex')
  }
  return Buffer.from(marker, 'utf8')
}

/**
 * Incremental multi-marker search over a stream of chunks: each marker is looked for inside every chunk and across
 * the seam with the previous chunk (the last `longest - 1` bytes are carried over). Pure apart from its own state.
 */
export class MarkerScanner {
  private readonly pending: { marker: string; bytes: Buffer }[]
  readonly found = new Set<string>()
  private tail: Buffer = Buffer.alloc(0)
  private readonly keep: number

  constructor(markers: readonly string[]) {
    this.pending = []
    for (const m of new Set(markers)) {
      let bytes: Buffer
      try {
        bytes = markerBytes(m)
      } catch {
        continue // a malformed marker can never match; the policy validator reports it
      }
      if (bytes.length > 0) this.pending.push({ marker: m, bytes })
    }
    this.keep = Math.max(0, ...this.pending.map((p) => p.bytes.length - 1))
  }

  get done(): boolean {
    return this.pending.length === 0
  }

  push(chunk: Buffer) {
    if (this.pending.length === 0) return
    const seam = this.tail.length > 0 ? Buffer.concat([this.tail, chunk.subarray(0, this.keep)]) : undefined
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const p = this.pending[i]!
      if (chunk.includes(p.bytes) || seam?.includes(p.bytes)) {
        this.found.add(p.marker)
        this.pending.splice(i, 1)
      }
    }
    if (this.keep === 0) return
    // Carry the last bytes over; a chunk shorter than `keep` extends the previous tail.
    const joined = chunk.length >= this.keep ? chunk : Buffer.concat([this.tail, chunk])
    this.tail = Buffer.from(joined.subarray(Math.max(0, joined.length - this.keep)))
  }
}

function identity(s: Stats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`
}

function toFacts(e: Entry, needs: CollectNeeds): FileFacts {
  const facts: FileFacts = {}
  if (needs.hashes && e.sha256) facts.sha256 = e.sha256
  const found = needs.markers.filter((m) => e.markers.get(m) === true)
  if (found.length > 0) facts.markers = found
  return facts
}

function satisfies(e: Entry, needs: CollectNeeds): boolean {
  return (!needs.hashes || e.sha256 !== undefined) && needs.markers.every((m) => e.markers.has(m))
}

async function readFacts(
  path: string,
  expect: Stats,
  hash: boolean,
  markers: string[],
  chunkSize: number,
  cache: FileCache,
): Promise<Entry | undefined> {
  let fh: Awaited<ReturnType<typeof open>> | undefined
  try {
    // O_NONBLOCK: never hang on a FIFO swapped in between stat and open.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
    const s = await fh.stat()
    if (!s.isFile() || s.ino !== expect.ino || s.dev !== expect.dev) return undefined
    const hasher = hash ? createHash('sha256') : undefined
    const scanner = new MarkerScanner(markers)
    const buf = Buffer.allocUnsafe(chunkSize)
    let total = 0
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      total += bytesRead
      const chunk = buf.subarray(0, bytesRead)
      hasher?.update(chunk)
      scanner.push(chunk)
      // Markers only: stop as soon as every one is found.
      if (!hasher && scanner.done) break
    }
    cache.count('reads', total)
    const entry: Entry = { markers: new Map(markers.map((m) => [m, scanner.found.has(m)])) }
    if (hasher) entry.sha256 = hasher.digest('hex')
    return entry
  } catch {
    return undefined
  } finally {
    await fh?.close().catch(() => {})
  }
}

export type CachedFileInspector = FileInspector & {
  readonly cache: FileCache
  stats(): FileCacheStats
}

export function createFileInspector(needs: CollectNeeds, opts: FileInspectorOptions = {}): CachedFileInspector {
  const cache = opts.cache ?? defaultCache
  const maxSize = opts.maxFileSize ?? DEFAULT_MAX_FILE_SIZE
  const chunkSize = opts.chunkSize ?? CHUNK
  const wanted = needs.hashes || needs.markers.length > 0

  async function inspect(path: string): Promise<FileFacts | undefined> {
    if (!wanted) return {}
    let s: Stats
    try {
      s = await stat(path)
    } catch {
      cache.count('failures')
      return undefined
    }
    if (!s.isFile() || s.size > maxSize) {
      cache.count('failures')
      return undefined
    }
    const key = identity(s)
    const cached = cache.get(key)
    if (cached && satisfies(cached, needs)) {
      cache.count('hits')
      return toFacts(cached, needs)
    }
    const running = cache.inflight.get(key)
    if (running) {
      const e = await running
      if (e && satisfies(e, needs)) {
        cache.count('hits')
        return toFacts(e, needs)
      }
    }
    cache.count('misses')
    // Only compute what the cache lacks, then merge, so changing needs does not discard earlier work.
    const hash = needs.hashes && cached?.sha256 === undefined
    const markers = needs.markers.filter((m) => !cached?.markers.has(m))
    const p = cache
      .withReadSlot(() => readFacts(path, s, hash, markers, chunkSize, cache))
      .then((e) => {
        if (!e) return undefined
        const merged: Entry = { sha256: e.sha256 ?? cached?.sha256, markers: new Map(cached?.markers) }
        for (const [m, v] of e.markers) merged.markers.set(m, v)
        cache.set(key, merged)
        return merged
      })
    cache.inflight.set(key, p)
    try {
      const e = await p
      if (!e) {
        cache.count('failures')
        return undefined
      }
      return toFacts(e, needs)
    } finally {
      if (cache.inflight.get(key) === p) cache.inflight.delete(key)
    }
  }

  return { inspect, cache, stats: () => cache.stats() }
}
