// Property lists (Info.plist) in both forms macOS writes: XML and binary `bplist00`. Hand-written rather than an npm
// dependency: `plist` reads XML only, `bplist-parser` is untyped and unmaintained, `@plist/parse` drags in an old
// fast-xml-parser major. The formats are small and fixed, and this reader only ever sees untrusted bundle files, so a
// bounds-checked reader we control (no entity expansion, no recursion bombs) is the safer choice.

export type PlistValue = string | number | bigint | boolean | Date | Uint8Array | PlistValue[] | PlistDict
export interface PlistDict {
  [key: string]: PlistValue
}

export class PlistError extends Error {
  override name = 'PlistError'
}

/** Seconds between the Unix epoch and Apple's reference date (2001-01-01T00:00:00Z). */
const APPLE_EPOCH = 978_307_200
const MAX_DEPTH = 64

/** Parse a plist in XML or binary form (detected from the first bytes). Throws PlistError on anything malformed. */
export function parsePlist(data: Uint8Array): PlistValue {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  if (buf.length >= 8 && buf.toString('latin1', 0, 6) === 'bplist') {
    const version = buf.toString('latin1', 6, 8)
    if (version !== '00') throw new PlistError(`unsupported binary plist version bplist${version}`)
    return parseBinaryPlist(buf)
  }
  let text: string
  if (buf[0] === 0xfe && buf[1] === 0xff) text = Buffer.from(buf.subarray(2)).swap16().toString('utf16le')
  else if (buf[0] === 0xff && buf[1] === 0xfe) text = buf.toString('utf16le', 2)
  else text = buf.toString('utf8')
  if (!/^\uFEFF?\s*</.test(text)) throw new PlistError('not a plist: neither bplist00 nor XML')
  return parseXmlPlist(text)
}

/** Parse a plist that must be a dictionary at the top (every Info.plist is). */
export function parsePlistDict(data: Uint8Array): PlistDict {
  const v = parsePlist(data)
  if (!isDict(v)) throw new PlistError('top-level object is not a dictionary')
  return v
}

export function isDict(v: PlistValue | undefined): v is PlistDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array)
}

// ---------------------------------------------------------------------------------------------------------------
// Binary: header `bplist00`, objects, an offset table, and a 32-byte trailer that says where the table is and how wide
// its entries and object references are.

export function parseBinaryPlist(buf: Buffer): PlistValue {
  if (buf.length < 8 + 32) throw new PlistError('binary plist too short')
  const t = buf.length - 32
  const offsetSize = buf[t + 6]!
  const refSize = buf[t + 7]!
  const numObjects = readUInt(buf, t + 8, 8)
  const topObject = readUInt(buf, t + 16, 8)
  const tableOffset = readUInt(buf, t + 24, 8)
  if (offsetSize < 1 || offsetSize > 8 || refSize < 1 || refSize > 8) {
    throw new PlistError('binary plist trailer has invalid integer sizes')
  }
  if (topObject >= numObjects || tableOffset < 8 || tableOffset + numObjects * offsetSize > t) {
    throw new PlistError('binary plist trailer points outside the file')
  }
  const offsets: number[] = new Array(numObjects)
  for (let i = 0; i < numObjects; i++) {
    const o = readUInt(buf, tableOffset + i * offsetSize, offsetSize)
    if (o < 8 || o >= tableOffset) throw new PlistError(`binary plist object ${i} offset out of range`)
    offsets[i] = o
  }
  // Objects on the current path: a reference back into it is a cycle, which a valid plist never has.
  const active = new Set<number>()

  const need = (pos: number, len: number) => {
    if (pos + len > tableOffset) throw new PlistError('binary plist object runs past the object table')
  }
  // Length of a variable-size object: the marker's low nibble, or 0xF followed by an int object.
  const lengthAt = (pos: number, info: number): [number, number] => {
    if (info !== 0xf) return [info, pos + 1]
    need(pos + 1, 1)
    const m = buf[pos + 1]!
    if (m >> 4 !== 0x1) throw new PlistError('binary plist length is not an integer')
    const n = 1 << (m & 0xf)
    need(pos + 2, n)
    return [readUInt(buf, pos + 2, n), pos + 2 + n]
  }
  const refs = (pos: number, count: number): number[] => {
    need(pos, count * refSize)
    const out: number[] = new Array(count)
    for (let i = 0; i < count; i++) out[i] = readUInt(buf, pos + i * refSize, refSize)
    return out
  }

  const read = (ref: number, depth: number): PlistValue => {
    if (ref >= numObjects) throw new PlistError(`binary plist reference ${ref} out of range`)
    if (active.has(ref) || depth > MAX_DEPTH)
      throw new PlistError('binary plist contains a cycle or is nested too deep')
    const pos = offsets[ref]!
    const marker = buf[pos]!
    const type = marker >> 4
    const info = marker & 0xf
    switch (type) {
      case 0x0:
        if (info === 0x8) return false
        if (info === 0x9) return true
        throw new PlistError(`binary plist null/fill object is not supported (marker 0x${hex(marker)})`)
      case 0x1: {
        const n = 1 << info
        need(pos + 1, n)
        if (n <= 4) return readUInt(buf, pos + 1, n)
        // 8-byte ints are signed; 16-byte ints store the value in the low 8 bytes.
        const v = buf.readBigInt64BE(pos + 1 + n - 8)
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
      }
      case 0x2:
        if (info !== 2 && info !== 3) throw new PlistError(`binary plist real of unsupported size ${1 << info}`)
        need(pos + 1, 1 << info)
        return info === 2 ? buf.readFloatBE(pos + 1) : buf.readDoubleBE(pos + 1)
      case 0x3:
        if (info !== 3) throw new PlistError('binary plist date has wrong size')
        need(pos + 1, 8)
        return new Date((buf.readDoubleBE(pos + 1) + APPLE_EPOCH) * 1000)
      case 0x4: {
        const [len, start] = lengthAt(pos, info)
        need(start, len)
        return new Uint8Array(buf.subarray(start, start + len))
      }
      case 0x5: {
        const [len, start] = lengthAt(pos, info)
        need(start, len)
        return buf.toString('latin1', start, start + len)
      }
      case 0x6: {
        const [len, start] = lengthAt(pos, info)
        need(start, len * 2)
        return Buffer.from(buf.subarray(start, start + len * 2))
          .swap16()
          .toString('utf16le')
      }
      case 0x8: // UID (keyed archives); never in Info.plist, kept as its number
        need(pos + 1, info + 1)
        return readUInt(buf, pos + 1, info + 1)
      case 0xa:
      case 0xc: {
        // array; set (read as an array)
        const [len, start] = lengthAt(pos, info)
        const items = refs(start, len)
        active.add(ref)
        const out = items.map((r) => read(r, depth + 1))
        active.delete(ref)
        return out
      }
      case 0xd: {
        const [len, start] = lengthAt(pos, info)
        const keys = refs(start, len)
        const values = refs(start + len * refSize, len)
        active.add(ref)
        const out: PlistDict = {}
        for (let i = 0; i < len; i++) {
          const k = read(keys[i]!, depth + 1)
          if (typeof k !== 'string') throw new PlistError('binary plist dictionary key is not a string')
          out[k] = read(values[i]!, depth + 1)
        }
        active.delete(ref)
        return out
      }
      default:
        throw new PlistError(`binary plist object has unknown marker 0x${hex(marker)}`)
    }
  }
  return read(topObject, 0)
}

function readUInt(buf: Buffer, pos: number, size: number): number {
  if (pos + size > buf.length) throw new PlistError('binary plist truncated')
  let v = 0
  for (let i = 0; i < size; i++) v = v * 256 + buf[pos + i]!
  if (!Number.isSafeInteger(v)) throw new PlistError('binary plist integer too large')
  return v
}

const hex = (n: number) => n.toString(16).padStart(2, '0')

// ---------------------------------------------------------------------------------------------------------------
// XML: the fixed Apple DTD vocabulary. A small tokenizer, not a general XML parser: no DTD processing, only the five
// predefined entities and character references.

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }

function decodeEntities(s: string): string {
  if (!s.includes('&')) return s
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10)
      if (cp > 0x10ffff) throw new PlistError(`invalid character reference ${m}`)
      return String.fromCodePoint(cp)
    }
    const v = ENTITIES[e]
    if (v === undefined) throw new PlistError(`unknown entity ${m}`)
    return v
  })
}

export function parseXmlPlist(text: string): PlistValue {
  let pos = 0
  const fail = (msg: string): never => {
    const line = text.slice(0, pos).split('\n').length
    throw new PlistError(`XML plist line ${line}: ${msg}`)
  }
  // Skip whitespace, comments, processing instructions and the DOCTYPE between elements.
  const skip = () => {
    for (;;) {
      while (pos < text.length && /\s|\uFEFF/.test(text[pos]!)) pos++
      let close: string | undefined
      if (text.startsWith('<!--', pos)) close = '-->'
      else if (text.startsWith('<?', pos)) close = '?>'
      else if (text.startsWith('<!DOCTYPE', pos)) close = '>'
      if (!close) return
      const end = text.indexOf(close, pos)
      if (end < 0) fail('unterminated comment or declaration')
      pos = end + close.length
    }
  }
  // Read a tag at pos: `<name ...>`, `<name/>` or `</name>`.
  const tag = (): { name: string; close: boolean; empty: boolean } => {
    skip()
    const m = /^<(\/?)([A-Za-z][\w.-]*)((?:\s+[^<>]*?)?)\s*(\/?)>/.exec(text.slice(pos, pos + 512))
    if (!m) return fail(pos >= text.length ? 'unexpected end of document' : 'expected an element')
    pos += m[0].length
    return { name: m[2]!, close: m[1] === '/', empty: m[4] === '/' }
  }
  // Character data up to `</name>` (CDATA sections allowed).
  const content = (name: string): string => {
    let out = ''
    for (;;) {
      const lt = text.indexOf('<', pos)
      if (lt < 0) fail(`unterminated <${name}>`)
      out += decodeEntities(text.slice(pos, lt))
      pos = lt
      if (text.startsWith('<![CDATA[', pos)) {
        const end = text.indexOf(']]>', pos)
        if (end < 0) fail('unterminated CDATA section')
        out += text.slice(pos + 9, end)
        pos = end + 3
        continue
      }
      if (text.startsWith('<!--', pos)) {
        const end = text.indexOf('-->', pos)
        if (end < 0) fail('unterminated comment')
        pos = end + 3
        continue
      }
      const end = `</${name}>`
      if (!text.startsWith(end, pos)) fail(`unexpected markup inside <${name}>`)
      pos += end.length
      return out
    }
  }

  const value = (t: { name: string; close: boolean; empty: boolean }, depth: number): PlistValue => {
    if (t.close) fail(`unexpected </${t.name}>`)
    if (depth > MAX_DEPTH) fail('nested too deep')
    const text = t.empty ? '' : undefined
    switch (t.name) {
      case 'string':
        return text ?? content('string')
      case 'integer': {
        const s = (text ?? content('integer')).trim()
        if (!/^[+-]?(?:\d+|0x[0-9a-fA-F]+)$/.test(s)) fail(`invalid integer "${s}"`)
        const b = BigInt(s.replace(/^\+/, ''))
        return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b
      }
      case 'real': {
        const s = (text ?? content('real')).trim()
        const n = /^[+-]?inf$/i.test(s) ? (s.startsWith('-') ? -1 : 1) * Number.POSITIVE_INFINITY : Number(s)
        if (s === '' || (Number.isNaN(n) && s.toLowerCase() !== 'nan')) fail(`invalid real "${s}"`)
        return n
      }
      case 'true':
      case 'false':
        if (!t.empty) content(t.name)
        return t.name === 'true'
      case 'date': {
        const s = (text ?? content('date')).trim()
        const d = new Date(s)
        if (Number.isNaN(d.getTime())) fail(`invalid date "${s}"`)
        return d
      }
      case 'data': {
        const s = (text ?? content('data')).replace(/\s+/g, '')
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) fail('invalid base64 in <data>')
        return new Uint8Array(Buffer.from(s, 'base64'))
      }
      case 'array': {
        const out: PlistValue[] = []
        if (t.empty) return out
        for (;;) {
          const c = tag()
          if (c.close && c.name === 'array') return out
          out.push(value(c, depth + 1))
        }
      }
      case 'dict': {
        const out: PlistDict = {}
        if (t.empty) return out
        for (;;) {
          const k = tag()
          if (k.close && k.name === 'dict') return out
          if (k.name !== 'key' || k.close) fail(`expected <key> in <dict>, found <${k.close ? '/' : ''}${k.name}>`)
          const key = k.empty ? '' : content('key')
          const v = tag()
          if (v.close) fail(`<key>${key}</key> has no value`)
          out[key] = value(v, depth + 1)
        }
      }
      default:
        return fail(`unknown element <${t.name}>`)
    }
  }

  const root = tag()
  let result: PlistValue
  if (root.name === 'plist' && !root.close) {
    if (root.empty) fail('empty <plist>')
    result = value(tag(), 0)
    const end = tag()
    if (!end.close || end.name !== 'plist') fail('expected </plist>')
  } else {
    result = value(root, 0)
  }
  skip()
  if (pos < text.length) fail('trailing content after the plist')
  return result
}
