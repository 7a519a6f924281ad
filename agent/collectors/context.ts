// Builds what every collector needs for one scan: OS, user homes, what the policy asks for, the cached file inspector.
import type { Matcher } from '../../policies/match.js'
import { createFileInspector } from './file-inspector.js'
import type { CollectContext, Os } from './types.js'
import { listUserHomes } from './users.js'

export async function collectContext(matcher: Matcher, opts: { os?: Os; root?: string } = {}): Promise<CollectContext> {
  const os = opts.os ?? (process.platform as Os)
  return {
    os,
    homes: await listUserHomes({ os, ...(opts.root ? { root: opts.root } : {}) }),
    needs: matcher.needs,
    files: createFileInspector(matcher.needs),
    ...(opts.root ? { root: opts.root } : {}),
  }
}
