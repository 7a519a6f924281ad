// The Windows process sources' parsers, and fastlist written only as the exact pinned bytes.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  FASTLIST_X64_SHA256,
  materializeFastlist,
  parseCimJson,
  parseFastlist,
  parseTasklistCsv,
} from '../../agent/collectors/windows-processes.js'
import { parseWindowsCommandLine } from '../../agent/collectors/windows/command-line.js'

const dir = mkdtempSync(join(tmpdir(), 'interdict-fastlist-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const fastlist = readFileSync(new URL('../../node_modules/ps-list/vendor/fastlist-0.3.0-x64.exe', import.meta.url))

describe('fastlist materialization', () => {
  it('writes the pinned bytes and rewrites a tampered copy', () => {
    const path = materializeFastlist(dir, fastlist)
    expect(readFileSync(path).equals(fastlist)).toBe(true)
    writeFileSync(path, 'MZ evil')
    expect(materializeFastlist(dir, fastlist)).toBe(path)
    expect(readFileSync(path).equals(fastlist)).toBe(true)
  })

  it('refuses bytes that are not the pinned fastlist', () => {
    expect(() => materializeFastlist(dir, Buffer.from('MZ other'))).toThrow(/pinned SHA-256/)
    expect(FASTLIST_X64_SHA256).toMatch(/^[0-9a-f]{64}$/)
  })
})

describe('process source parsers', () => {
  it('parses fastlist', () => {
    expect(parseFastlist('4\t0\tSystem\r\n1234\t4\tTelegram.exe\r\n')).toEqual([
      { kind: 'process', pid: 4, ppid: 0, name: 'System' },
      { kind: 'process', pid: 1234, ppid: 4, name: 'Telegram.exe' },
    ])
  })

  it('parses CIM JSON (one object or an array)', () => {
    const one = JSON.stringify({
      ProcessId: 10,
      ParentProcessId: 1,
      Name: 'Telegram.exe',
      ExecutablePath: 'C:\\Users\\u\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe',
      CommandLine: '"C:\\Users\\u\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe" -autostart',
      CreationDate: '/Date(1700000000000)/',
    })
    expect(parseCimJson(one)).toEqual([
      {
        kind: 'process',
        pid: 10,
        ppid: 1,
        name: 'Telegram.exe',
        exe: 'C:\\Users\\u\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe',
        argv: ['C:\\Users\\u\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe', '-autostart'],
        startTime: 1700000000000,
      },
    ])
    expect(parseCimJson(`[${one},{"ProcessId":0,"ParentProcessId":0,"Name":"System Idle Process"}]`)).toHaveLength(2)
    expect(parseCimJson('')).toEqual([])
  })

  it('parses tasklist CSV', () => {
    const csv = '"System Idle Process","0","Services","0","8 K"\r\n"Telegram.exe","5512","Console","1","120,004 K"\r\n'
    expect(parseTasklistCsv(csv).map((r) => [r.name, r.pid])).toEqual([
      ['System Idle Process', 0],
      ['Telegram.exe', 5512],
    ])
  })

  it('splits Windows command lines', () => {
    expect(parseWindowsCommandLine('"C:\\a b\\x.exe" -f "quoted arg" plain')).toEqual([
      'C:\\a b\\x.exe',
      '-f',
      'quoted arg',
      'plain',
    ])
    expect(parseWindowsCommandLine('x.exe ""')).toEqual(['x.exe', ''])
  })
})
