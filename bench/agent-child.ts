// The agent side of bench/kill-latency.ts: the real daemon, answering usage queries over IPC. Bundled by the bench
// with esbuild (as build/ ships it) so RSS is the agent's, not the TypeScript loader's.
import { Daemon } from '../agent/daemon.js'

const d = new Daemon({ stateDir: process.env.BENCH_STATE!, scanCron: '0 0 1 1 *', waitSec: 55 })
await d.start()
// RSS before the first full scan completes vs after: the scan's transient allocations are what V8 keeps mapped.
const rssAtStart = process.memoryUsage().rss
process.on('message', (m: string) => {
  if (m === 'usage') {
    const c = process.cpuUsage()
    const mem = process.memoryUsage()
    const s = d.watcher.stats
    process.send!({
      cpuMicros: c.user + c.system,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      rssAtStart,
      lastScan: d.status().lastScan,
      watcher: { ticks: s.ticks, listings: s.listings, newPids: s.newPids },
    })
  } else if (m === 'stop') void d.stop().then(() => process.exit(0))
})
process.send!('ready')
