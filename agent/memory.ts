// Keeps the resident agent small. A full scan allocates a burst (package databases, hashing buffers) and V8 keeps the
// grown heap afterwards; the agent then idles for 15 minutes. One full collection after each scan returns that memory
// for ~10 ms per scan. (The binaries also start with a 1 MB young generation: AGENT_EXEC_ARGV in build/sea.ts; that
// flag only works at startup.) bench/agent-rss.ts measures both.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

let collect: (() => void) | undefined

/** Call once, first thing in a long-running command (flags set later would not apply to the young generation). */
export function tuneForResidentAgent(): void {
  setFlagsFromString('--expose-gc')
  // `gc` is only installed in contexts created after the flag is set.
  collect = runInNewContext('gc') as () => void
}

/** A full, compacting collection (no-op unless tuneForResidentAgent ran). */
export function compactHeap(): void {
  collect?.()
}
