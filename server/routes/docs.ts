// GET /api/docs: the OpenAPI 3.1 document of every route, built from the schemas the routes validate with (collected
// by an onRoute hook, so a route cannot be added without appearing here). TypeBox schemas are JSON Schema 2020-12,
// which OpenAPI 3.1 embeds as is. /api/docs/ui is a small page listing it, with no assets from anywhere else.
import type { FastifyInstance, RouteOptions } from 'fastify'

interface Collected {
  method: string
  url: string
  schema: Record<string, unknown>
}

type Json = Record<string, unknown>

/** Copy without TypeBox's non-enumerable markers (and anything else that is not plain JSON). */
const plain = (s: unknown): Json => JSON.parse(JSON.stringify(s)) as Json

const PUBLIC = new Set(['/healthz', '/api/v1/enroll', '/api/docs', '/api/docs/ui'])

function tagOf(url: string): string {
  if (url.startsWith('/api/v1/admin/exemptions')) return 'exemptions'
  if (url.startsWith('/api/v1/admin/webhooks')) return 'webhooks'
  if (url.startsWith('/api/v1/admin')) return 'admin'
  if (url.startsWith('/api/v1')) return 'device'
  return 'server'
}

function parameters(schema: Json | undefined, where: 'path' | 'query') {
  if (!schema) return []
  const s = plain(schema)
  const props = (s.properties ?? {}) as Record<string, Json>
  const required = new Set((s.required ?? []) as string[])
  return Object.entries(props).map(([name, sch]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(typeof sch.description === 'string' ? { description: sch.description } : {}),
    schema: sch,
  }))
}

/** The OpenAPI document for the collected routes. Pure. */
export function openApiDocument(routes: readonly Collected[], version: string) {
  const paths: Record<string, Record<string, Json>> = {}
  for (const r of [...routes].sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method))) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    const s = r.schema
    const responses: Record<string, Json> = {}
    for (const [code, sch] of Object.entries((s.response ?? {}) as Record<string, unknown>)) {
      responses[code] = { description: `HTTP ${code}`, content: { 'application/json': { schema: plain(sch) } } }
    }
    if (Object.keys(responses).length === 0) responses['2XX'] = { description: 'success' }
    responses['4XX'] = { $ref: '#/components/responses/Error' }
    const op: Json = {
      operationId: `${r.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      tags: [tagOf(r.url)],
      ...(typeof s.summary === 'string' ? { summary: s.summary } : {}),
      parameters: [...parameters(s.params as Json, 'path'), ...parameters(s.querystring as Json, 'query')],
      ...(s.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: plain(s.body) } } } }
        : {}),
      responses,
      security: PUBLIC.has(r.url) ? [] : [{ bearer: [] }],
    }
    paths[path] ??= {}
    paths[path][r.method.toLowerCase()] = op
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Interdict API',
      version,
      description:
        'Device protocol (/api/v1, device tokens) and admin API (/api/v1/admin, admin tokens change things, auditor ' +
        'tokens read). Errors are {error, message}.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: {
        Error: {
          description: 'error',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['error', 'message'],
                properties: { error: { type: 'string' }, message: { type: 'string' } },
              },
            },
          },
        },
      },
    },
    paths,
  }
}

const UI = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Interdict API</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}code{font-size:13px}
h2{margin-top:1.5em}td{padding:2px 8px;vertical-align:top}.m{font-weight:bold;text-transform:uppercase}</style>
</head><body><h1>Interdict API</h1><p>The OpenAPI 3.1 document: <a href="/api/docs">/api/docs</a></p><div id="out">loading...</div>
<script>
fetch('/api/docs').then(r=>r.json()).then(d=>{const by={};for(const[p,ops]of Object.entries(d.paths))for(const[m,o]of Object.entries(ops))(by[o.tags[0]]??=[]).push([m,p,o]);
const out=document.getElementById('out');out.textContent='';for(const[t,list]of Object.entries(by)){const h=document.createElement('h2');h.textContent=t;out.append(h);const tb=document.createElement('table');
for(const[m,p,o]of list){const tr=tb.insertRow();tr.insertCell().textContent=m;tr.cells[0].className='m';const c=tr.insertCell();c.innerHTML='<code></code>';c.firstChild.textContent=p;tr.insertCell().textContent=o.summary??''}out.append(tb)}})
</script></body></html>`

/** Collect routes as they are registered; call before any route is added. */
export function collectRoutes(app: FastifyInstance, version: string) {
  const routes: Collected[] = []
  app.addHook('onRoute', (r: RouteOptions) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method]
    for (const m of methods) {
      // HEAD is implied by GET (Fastify answers it for every GET route).
      if (m === 'HEAD' || r.url === '*') continue
      // The API only: dashboard pages and their assets are HTML for people, not part of the machine interface.
      if (!/^\/(api|healthz|metrics)(\/|$)/.test(r.url)) continue
      routes.push({ method: m, url: r.url, schema: (r.schema ?? {}) as Record<string, unknown> })
    }
  })
  let doc: unknown
  app.get('/api/docs', { schema: { summary: 'this OpenAPI document' } as object }, async () => {
    doc ??= openApiDocument(routes, version)
    return doc
  })
  app.get('/api/docs/ui', { schema: { summary: 'a page listing the routes' } as object }, async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'self' 'unsafe-inline'")
      .send(UI),
  )
  return routes
}
