// Shared helpers for the Linux collector tests: temp dirs, real child processes, contexts.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createFileInspector, FileCache } from '../../agent/collectors/file-inspector.js'
import type { CollectContext, CollectNeeds, UserHome } from '../../agent/collectors/types.js'

export const SLEEP = '/bin/sleep'

export function makeNeeds(over: Partial<CollectNeeds> = {}): CollectNeeds {
  return { hashes: false, markers: [], artifacts: [], names: [], ...over }
}

export function makeCtx(over: Partial<CollectContext> & { needs?: CollectNeeds } = {}): CollectContext {
  const needs = over.needs ?? makeNeeds()
  return {
    os: 'linux',
    homes: [],
    files: createFileInspector(needs, { cache: new FileCache() }),
    ...over,
    needs,
  }
}

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

/** A temp dir removed by `cleanup()`. */
export function tempDir(prefix = 'interdict-linux-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Write a file (creating parents), optionally executable. */
export function put(path: string, content: string | Buffer, mode?: number) {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, content)
  if (mode !== undefined) chmodSync(path, mode)
}

/** Copy /bin/sleep to `path`, with extra bytes appended (ELF ignores trailing data, so it still runs). */
export function sleepCopy(path: string, append?: Buffer | string) {
  mkdirSync(dirname(path), { recursive: true })
  copyFileSync(SLEEP, path)
  if (append !== undefined) writeFileSync(path, append, { flag: 'a' })
  chmodSync(path, 0o755)
}

/** Children spawned by a test; `killAll()` in afterEach. */
export class Children {
  readonly list: ChildProcess[] = []

  spawn(path: string, args: string[] = ['60']): ChildProcess {
    // spawn returns after exec succeeded (libuv reports exec failure through a CLOEXEC pipe), so /proc shows it.
    const child = spawn(path, args, { stdio: 'ignore' })
    this.list.push(child)
    return child
  }

  async killAll() {
    await Promise.all(
      this.list.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve()
            c.once('exit', () => resolve())
            c.kill('SIGKILL')
          }),
      ),
    )
    this.list.length = 0
  }
}

export function home(user: string, path: string, uid?: number): UserHome {
  return uid === undefined ? { user, home: path } : { user, uid, home: path }
}

export const FIXTURES = new URL('../fixtures/linux/', import.meta.url).pathname
export const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8')
