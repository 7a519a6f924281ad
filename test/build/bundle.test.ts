// Bundle-time changes to dependencies (build/bundle.ts), checked on real bundles run by Node: axios, bundled without
// the web globals, still posts JSON over its http adapter and never makes Node load undici.
import type * as esbuild from 'esbuild'
import { describe, expect, it } from 'vitest'
import { axiosWithoutWebGlobals } from '../../build/bundle.js'
import { runBundled } from './run-bundled.js'

// A JSON POST and a GET against a local server, then: what came back, and did Node load its undici?
const SCRIPT = `import axios from 'axios'
import http from 'node:http'
const srv = http.createServer((req, res) => {
  let body = ''
  req.on('data', (c) => { body += c })
  req.on('end', () => res.end(JSON.stringify({ type: req.headers['content-type'], body })))
}).listen(0, '127.0.0.1', async () => {
  const url = 'http://127.0.0.1:' + srv.address().port + '/'
  const posted = (await axios.post(url, { reportId: 'r1', findings: [] })).data
  const got = (await axios.get(url)).status
  srv.close()
  console.log(JSON.stringify({ posted, got, undici: process.moduleLoadList.some((m) => m.includes('undici')) }))
})`

async function run(plugins: esbuild.Plugin[]) {
  const res = await runBundled(SCRIPT, { plugins })
  expect(res.status, res.stderr).toBe(0)
  return JSON.parse(res.stdout) as { posted: { type: string; body: string }; got: number; undici: boolean }
}

describe('axios bundled without the web globals', () => {
  it('posts JSON and gets over http without loading undici (as bundled as-is, it does load it)', async () => {
    const patched = await run([axiosWithoutWebGlobals()])
    expect(patched.posted.type).toMatch(/^application\/json/)
    expect(JSON.parse(patched.posted.body)).toEqual({ reportId: 'r1', findings: [] })
    expect(patched.got).toBe(200)
    expect(patched.undici).toBe(false)
    // The control: the same script bundled without the plugin loads undici, so the check above can fail.
    expect((await run([])).undici).toBe(true)
  })
})
