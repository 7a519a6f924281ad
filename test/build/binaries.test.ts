// Opt-in (`npm run test:binaries`, sets INTERDICT_TEST_BINARIES=1): builds every target, checks each output's file
// type, and runs the foreign ones here: linux-arm64 under qemu-aarch64-static, win-x64 under wine64.
// INTERDICT_TEST_BINARIES=prebuilt tests what build/out already holds. Debian packages:
//   apt-get install -y qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross wine64
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { APPS, outputName } from '../../build/targets.js'
import { REPO } from '../helpers.js'

const OUT = join(REPO, 'build/out')
const mode = process.env.INTERDICT_TEST_BINARIES
const enabled = mode === '1' || mode === 'prebuilt'
const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version

function which(cmd: string, extra: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extra]) {
    if (existsSync(join(dir, cmd))) return join(dir, cmd)
  }
  return undefined
}

const FILE_TYPES: Record<string, RegExp> = {
  'linux-x64': /ELF 64-bit LSB .*x86-64/,
  'linux-arm64': /ELF 64-bit LSB .*ARM aarch64/,
  'win-x64': /PE32\+ executable .*x86-64/,
  'win-arm64': /PE32\+ executable .*Aarch64/,
  'darwin-x64': /Mach-O 64-bit .*x86_64/,
  'darwin-arm64': /Mach-O 64-bit .*arm64/,
}

describe.skipIf(!enabled)('all targets (opt-in)', () => {
  beforeAll(() => {
    if (mode === 'prebuilt') return
    const res = spawnSync(process.execPath, [join(REPO, 'node_modules/tsx/dist/cli.mjs'), 'build/build.ts'], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 900_000,
    })
    process.stderr.write(res.stdout)
    expect(res.status, res.stderr).toBe(0)
  }, 900_000)

  const outputs = APPS.flatMap((app) => app.targets.map((t) => ({ app: app.name, target: t })))

  it.each(outputs)('$app $target has the right file type', ({ app, target }) => {
    const file = join(OUT, outputName(app, target))
    const res = spawnSync('file', ['-b', file], { encoding: 'utf8' })
    expect(res.stdout).toMatch(FILE_TYPES[target] as RegExp)
  })

  it('every output is listed in SHA256SUMS', () => {
    const sums = readFileSync(join(OUT, 'SHA256SUMS'), 'utf8')
    for (const o of outputs) expect(sums).toContain(`  ${outputName(o.app, o.target)}\n`)
  })

  // Node for linux-arm64 is dynamically linked: qemu needs the arm64 libc and libstdc++ (Debian's cross packages).
  const qemu = which('qemu-aarch64-static')
  const sysroot = '/usr/aarch64-linux-gnu'
  it.skipIf(!qemu || !existsSync(join(sysroot, 'lib/ld-linux-aarch64.so.1')))(
    'linux-arm64 agent runs under qemu',
    () => {
      const bin = join(OUT, outputName('interdict-agent', 'linux-arm64'))
      const q = (args: string[]) =>
        spawnSync(qemu as string, ['-L', sysroot, bin, ...args], { encoding: 'utf8', timeout: 200_000 })
      const v = q(['--version'])
      expect(v.stdout.trim(), v.stderr).toBe(version)
      const scan = q(['scan', '--json'])
      expect([0, 1], scan.stderr).toContain(scan.status)
      expect((JSON.parse(scan.stdout) as { class: string }).class).toBe('standard')
    },
    240_000,
  )

  // Wine 8 pretends to be Windows 7 (Node 22 refuses it) and gives Node unusable pipes for stdio: report Windows 10
  // and send output to files.
  const wine = which('wine64', ['/usr/lib/wine'])
  it.skipIf(!wine)(
    'win-x64 agent runs under wine64',
    () => {
      const bin = join(OUT, outputName('interdict-agent', 'win-x64'))
      const env = { ...process.env, WINEDEBUG: '-all', WINEPREFIX: join(OUT, '.wine') }
      const io = mkdtempSync(join(tmpdir(), 'interdict-wine-'))
      const w = (args: string[]) => {
        const res = spawnSync('sh', ['-c', `"$0" "$@" >"${io}/out" 2>"${io}/err"`, wine as string, ...args], {
          encoding: 'utf8',
          timeout: 300_000,
          env,
        })
        return {
          status: res.status,
          stdout: readFileSync(join(io, 'out'), 'utf8'),
          stderr: readFileSync(join(io, 'err'), 'utf8'),
        }
      }
      try {
        w(['reg', 'add', 'HKCU\\Software\\Wine', '/v', 'Version', '/d', 'win10', '/f'])
        const v = w([bin, '--version'])
        expect(v.stdout.trim(), v.stderr).toBe(version)
        const help = w([bin, '--help'])
        expect(help.stdout).toContain('install-service')
        const print = w([bin, 'install-service', '--print'])
        expect(print.stdout).toContain('sc.exe create InterdictAgent')
      } finally {
        rmSync(io, { recursive: true, force: true })
      }
    },
    480_000,
  )
})
