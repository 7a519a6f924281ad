// PE (Windows .exe/.dll) version information: the VS_VERSIONINFO resource's StringFileInfo (CompanyName, ProductName,
// FileDescription, OriginalFilename). A renamed Telegram.exe still says ProductName "Telegram Desktop". Only the
// headers and the resource directory are read, never the whole file.
import { open } from 'node:fs/promises'

export interface PeVersionInfo {
  companyName?: string
  productName?: string
  fileDescription?: string
  originalFilename?: string
  internalName?: string
  fileVersion?: string
  productVersion?: string
  /** Every string of the first string table (language), by key. */
  strings: Record<string, string>
}

export interface PeSection {
  name: string
  virtualAddress: number
  virtualSize: number
  rawOffset: number
  rawSize: number
}

export interface PeLayout {
  is64: boolean
  sections: PeSection[]
  /** The resource directory (data directory 2); undefined when the file has no resources. */
  resources?: { rva: number; size: number; fileOffset: number; sectionEnd: number }
}

/** Bytes needed to see every header, given the first 64 bytes (e_lfanew plus generous room for sections). */
export function peHeaderSize(head: Uint8Array): number {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength)
  if (b.length < 64 || b[0] !== 0x4d || b[1] !== 0x5a) return 0
  return b.readUInt32LE(0x3c) + 24 + 240 + 96 * 40
}

/** Parse DOS, COFF and optional headers and the section table (pure). Throws on anything that is not a PE. */
export function parsePeLayout(buf: Buffer): PeLayout {
  if (buf.length < 64 || buf[0] !== 0x4d || buf[1] !== 0x5a) throw new Error('not a PE file: no MZ header')
  const pe = buf.readUInt32LE(0x3c)
  if (pe + 24 > buf.length || buf.readUInt32LE(pe) !== 0x00004550) throw new Error('not a PE file: no PE signature')
  const numSections = buf.readUInt16LE(pe + 6)
  const optSize = buf.readUInt16LE(pe + 20)
  const opt = pe + 24
  if (opt + optSize > buf.length || optSize < 2) throw new Error('PE optional header truncated')
  const magic = buf.readUInt16LE(opt)
  if (magic !== 0x10b && magic !== 0x20b)
    throw new Error(`PE optional header has unknown magic 0x${magic.toString(16)}`)
  const is64 = magic === 0x20b
  const dirCountAt = opt + (is64 ? 108 : 92)
  const dirs = opt + (is64 ? 112 : 96)
  const sectionsAt = opt + optSize
  if (sectionsAt + numSections * 40 > buf.length) throw new Error('PE section table truncated')
  const sections: PeSection[] = []
  for (let i = 0; i < numSections; i++) {
    const s = sectionsAt + i * 40
    sections.push({
      name: buf.toString('latin1', s, s + 8).replace(/\0.*$/s, ''),
      virtualSize: buf.readUInt32LE(s + 8),
      virtualAddress: buf.readUInt32LE(s + 12),
      rawSize: buf.readUInt32LE(s + 16),
      rawOffset: buf.readUInt32LE(s + 20),
    })
  }
  const layout: PeLayout = { is64, sections }
  if (dirCountAt + 4 <= opt + optSize && buf.readUInt32LE(dirCountAt) > 2 && dirs + 24 <= opt + optSize) {
    const rva = buf.readUInt32LE(dirs + 16)
    const size = buf.readUInt32LE(dirs + 20)
    const sec = rva ? sectionOf(sections, rva) : undefined
    if (sec) {
      const fileOffset = sec.rawOffset + (rva - sec.virtualAddress)
      layout.resources = { rva, size, fileOffset, sectionEnd: sec.rawOffset + sec.rawSize }
    }
  }
  return layout
}

function sectionOf(sections: PeSection[], rva: number): PeSection | undefined {
  return sections.find((s) => rva >= s.virtualAddress && rva < s.virtualAddress + Math.max(s.virtualSize, s.rawSize))
}

const RT_VERSION = 16

/**
 * Find the first RT_VERSION resource in a resource tree (pure). `rsrc` holds the file bytes from the resource
 * directory on; `rsrcRva` is its RVA. Returns the version resource's RVA and size.
 */
export function findVersionResource(rsrc: Buffer, rsrcRva: number): { rva: number; size: number } | undefined {
  const entries = (dirOffset: number): { id: number; named: boolean; offset: number; isDir: boolean }[] => {
    if (dirOffset + 16 > rsrc.length) return []
    const n = rsrc.readUInt16LE(dirOffset + 12) + rsrc.readUInt16LE(dirOffset + 14)
    const out = []
    for (let i = 0; i < Math.min(n, 4096); i++) {
      const e = dirOffset + 16 + i * 8
      if (e + 8 > rsrc.length) break
      const name = rsrc.readUInt32LE(e)
      const off = rsrc.readUInt32LE(e + 4)
      out.push({
        id: name & 0xffff,
        named: (name & 0x80000000) !== 0,
        offset: off & 0x7fffffff,
        isDir: (off & 0x80000000) !== 0,
      })
    }
    return out
  }
  const type = entries(0).find((e) => !e.named && e.id === RT_VERSION && e.isDir)
  if (!type) return undefined
  // Levels 2 (resource id) and 3 (language): take the first of each; files carry one version resource.
  const id = entries(type.offset).find((e) => e.isDir)
  if (!id) return undefined
  const lang = entries(id.offset).find((e) => !e.isDir)
  if (!lang || lang.offset + 16 > rsrc.length) return undefined
  const rva = rsrc.readUInt32LE(lang.offset)
  const size = rsrc.readUInt32LE(lang.offset + 4)
  if (rva < rsrcRva || size === 0) return undefined
  return { rva, size }
}

interface Block {
  key: string
  end: number
  valueStart: number
  valueBytes: number
  childrenStart: number
}

const align4 = (n: number) => (n + 3) & ~3

// One node of the VS_VERSIONINFO tree: wLength, wValueLength, wType, szKey (UTF-16LE), padding, value, children.
function readBlock(b: Buffer, pos: number, limit: number): Block | undefined {
  if (pos + 6 > limit) return undefined
  const length = b.readUInt16LE(pos)
  const valueLength = b.readUInt16LE(pos + 2)
  const type = b.readUInt16LE(pos + 4)
  const end = Math.min(pos + length, limit)
  if (length < 6 || end <= pos + 6) return undefined
  let k = pos + 6
  while (k + 1 < end && b.readUInt16LE(k) !== 0) k += 2
  const key = b.toString('utf16le', pos + 6, k)
  const valueStart = align4(k + 2)
  // wValueLength counts WCHARs for text values (wType 1) and bytes otherwise.
  const valueBytes = Math.min(type === 1 ? valueLength * 2 : valueLength, Math.max(0, end - valueStart))
  return { key, end, valueStart, valueBytes, childrenStart: align4(valueStart + valueBytes) }
}

function children(b: Buffer, parent: Block): Block[] {
  const out: Block[] = []
  let pos = parent.childrenStart
  while (pos < parent.end && out.length < 1024) {
    const c = readBlock(b, pos, parent.end)
    if (!c) break
    out.push(c)
    pos = align4(c.end)
  }
  return out
}

const KEYS: Record<string, keyof Omit<PeVersionInfo, 'strings' | 'fileVersion' | 'productVersion'>> = {
  CompanyName: 'companyName',
  ProductName: 'productName',
  FileDescription: 'fileDescription',
  OriginalFilename: 'originalFilename',
  InternalName: 'internalName',
}

/** Parse a VS_VERSIONINFO resource (pure). */
export function parseVersionResource(b: Buffer): PeVersionInfo | undefined {
  const root = readBlock(b, 0, b.length)
  if (root?.key !== 'VS_VERSION_INFO') return undefined
  const info: PeVersionInfo = { strings: {} }
  if (root.valueBytes >= 52 && b.readUInt32LE(root.valueStart) === 0xfeef04bd) {
    const v = (at: number) => {
      const ms = b.readUInt32LE(root.valueStart + at)
      const ls = b.readUInt32LE(root.valueStart + at + 4)
      return `${ms >>> 16}.${ms & 0xffff}.${ls >>> 16}.${ls & 0xffff}`
    }
    info.fileVersion = v(8)
    info.productVersion = v(16)
  }
  const sfi = children(b, root).find((c) => c.key === 'StringFileInfo')
  // The first string table (language) is the one Explorer shows for single-language files, which is nearly all.
  const table = sfi ? children(b, sfi)[0] : undefined
  if (!table) return info
  for (const s of children(b, table)) {
    // Read the value to the end of its block: some linkers write wValueLength in bytes, not characters.
    const raw = b.toString('utf16le', s.valueStart, s.end - ((s.end - s.valueStart) % 2))
    const value = raw.split('\0')[0]!.trim()
    if (!s.key || !value) continue
    info.strings[s.key] = value
    const field = KEYS[s.key]
    if (field) info[field] = value
  }
  return info
}

/** Version info from a whole PE file in memory (pure). Undefined when it has none. Throws when it is not a PE. */
export function parsePeVersionInfo(file: Buffer): PeVersionInfo | undefined {
  const { resources, sections } = parsePeLayout(file)
  if (!resources) return undefined
  const rsrc = file.subarray(resources.fileOffset, Math.min(resources.sectionEnd, file.length))
  const found = findVersionResource(rsrc, resources.rva)
  if (!found) return undefined
  const sec = sectionOf(sections, found.rva)
  if (!sec) return undefined
  const at = sec.rawOffset + (found.rva - sec.virtualAddress)
  return parseVersionResource(file.subarray(at, Math.min(at + found.size, file.length)))
}

/** The resource directory tree is small and sits at the start of .rsrc; icons and manifests follow it. */
const RSRC_PREFIX = 256 * 1024
const MAX_VERSION_RESOURCE = 64 * 1024

export interface PeFileInfo {
  /** The file has MZ and PE headers. */
  pe: boolean
  version?: PeVersionInfo
}

/** Read a file's PE headers and version info from disk with a few small reads. Throws only on I/O errors. */
export async function inspectPe(path: string): Promise<PeFileInfo> {
  const fh = await open(path, 'r')
  try {
    const readAt = async (offset: number, length: number) => {
      const buf = Buffer.alloc(length)
      const { bytesRead } = await fh.read(buf, 0, length, offset)
      return buf.subarray(0, bytesRead)
    }
    const need = peHeaderSize(await readAt(0, 64))
    if (!need) return { pe: false }
    let layout: PeLayout
    try {
      layout = parsePeLayout(await readAt(0, Math.min(need, 1024 * 1024)))
    } catch {
      return { pe: false }
    }
    const r = layout.resources
    if (!r) return { pe: true }
    const rsrc = await readAt(r.fileOffset, Math.max(0, Math.min(RSRC_PREFIX, r.sectionEnd - r.fileOffset)))
    const found = findVersionResource(rsrc, r.rva)
    const sec = found && sectionOf(layout.sections, found.rva)
    if (!found || !sec) return { pe: true }
    const at = sec.rawOffset + (found.rva - sec.virtualAddress)
    const version = parseVersionResource(await readAt(at, Math.min(found.size, MAX_VERSION_RESOURCE)))
    return version ? { pe: true, version } : { pe: true }
  } finally {
    await fh.close()
  }
}

/** A PE file's version info from disk; undefined for non-PE files and PEs without one. */
export async function readPeVersionInfo(path: string): Promise<PeVersionInfo | undefined> {
  return (await inspectPe(path)).version
}
