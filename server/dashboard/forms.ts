// Browser form bodies: application/x-www-form-urlencoded and multipart/form-data (the policy upload), parsed into one
// shape. Small on purpose: the dashboard's forms have a handful of fields and at most a few policy files.
import type { FastifyInstance } from 'fastify'

interface UploadedFile {
  field: string
  filename: string
  data: Buffer
}

export class Form {
  constructor(
    private readonly fields: Map<string, string[]>,
    readonly files: UploadedFile[] = [],
  ) {}

  get(name: string): string | undefined {
    return this.fields.get(name)?.[0]
  }

  /** Trimmed, or undefined when blank. */
  text(name: string): string | undefined {
    const v = this.get(name)?.trim()
    return v ? v : undefined
  }

  has(name: string): boolean {
    return this.fields.has(name)
  }
}

function add(map: Map<string, string[]>, k: string, v: string) {
  const list = map.get(k)
  if (list) list.push(v)
  else map.set(k, [v])
}

function parseUrlEncoded(body: string): Form {
  const map = new Map<string, string[]>()
  for (const [k, v] of new URLSearchParams(body)) add(map, k, v)
  return new Form(map)
}

/** RFC 7578 as browsers send it: parts separated by the boundary, headers, a blank line, the content. */
export function parseMultipart(body: Buffer, contentType: string): Form {
  const m = /boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType)
  if (!m) throw new Error('multipart body without a boundary')
  const delimiter = Buffer.from(`--${m[1] ?? m[2]}`)
  const map = new Map<string, string[]>()
  const files: UploadedFile[] = []
  let pos = body.indexOf(delimiter)
  while (pos !== -1) {
    let start = pos + delimiter.length
    if (body.subarray(start, start + 2).toString() === '--') break
    start += 2 // CRLF after the delimiter
    const next = body.indexOf(delimiter, start)
    if (next === -1) break
    const part = body.subarray(start, next - 2) // CRLF before the next delimiter
    const split = part.indexOf('\r\n\r\n')
    if (split !== -1) {
      const headers = part.subarray(0, split).toString('utf8')
      const data = part.subarray(split + 4)
      const disp = /content-disposition:[^\r\n]*/i.exec(headers)?.[0] ?? ''
      const name = /\bname="([^"]*)"/i.exec(disp)?.[1]
      const filename = /\bfilename="([^"]*)"/i.exec(disp)?.[1]
      if (name !== undefined) {
        if (filename !== undefined) {
          if (filename !== '' || data.length > 0) files.push({ field: name, filename, data })
        } else add(map, name, data.toString('utf8'))
      }
    }
    pos = next
  }
  return new Form(map, files)
}

/** Registers both parsers on this (encapsulated) plugin only; the JSON API keeps accepting JSON alone. */
export function registerFormParsers(app: FastifyInstance, bodyLimit: number) {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit }, (_req, body, done) =>
    done(null, parseUrlEncoded(body as string)),
  )
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit }, (req, body, done) => {
    try {
      done(null, parseMultipart(body as Buffer, String(req.headers['content-type'])))
    } catch (err) {
      done(Object.assign(err as Error, { statusCode: 400 }), undefined)
    }
  })
}
