// Where the agent keeps its state, per OS; `--state-dir` or INTERDICT_STATE_DIR override (tests, unusual layouts).
import { join, resolve, win32 } from 'node:path'

export function defaultStateDir(
  platform: NodeJS.Platform = process.platform,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (platform === 'darwin') return '/Library/Application Support/Interdict'
  if (platform === 'win32') return win32.join(env.ProgramData ?? 'C:\\ProgramData', 'Interdict')
  return '/var/lib/interdict'
}

export function resolveStateDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag || env.INTERDICT_STATE_DIR || defaultStateDir(process.platform, env))
}

/** Every file and folder of the state dir, in one place. */
export function statePaths(stateDir: string) {
  return {
    dir: stateDir,
    config: join(stateDir, 'config.json'),
    ca: join(stateDir, 'ca.pem'),
    bundle: join(stateDir, 'bundle.json'),
    policy: join(stateDir, 'policy.json'),
    status: join(stateDir, 'status.json'),
    outbox: join(stateDir, 'outbox'),
    quarantine: join(stateDir, 'quarantine'),
    networkBlock: join(stateDir, 'network-block.json'),
  }
}
export type StatePaths = ReturnType<typeof statePaths>
