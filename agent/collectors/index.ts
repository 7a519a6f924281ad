// The collectors for each OS. A plain list: the scan runs each one and isolates its failure.
import { artifactsCollector } from './artifacts.js'
import { desktopEntriesCollector } from './linux/desktop-entries.js'
import { dpkgCollector } from './linux/dpkg.js'
import { flatpakCollector } from './linux/flatpak.js'
import { portableCollector } from './linux/portable.js'
import { rpmCollector } from './linux/rpm.js'
import { snapCollector } from './linux/snap.js'
import { networkCollector } from './network.js'
import { macosAppsCollector } from './macos/apps.js'
import { processesCollector } from './processes.js'
import type { Collector, Os } from './types.js'
import { windowsAppxCollector } from './windows/appx.js'
import { windowsExecutablesCollector } from './windows/executables.js'
import { windowsProgramsCollector } from './windows/registry.js'

export const ALL_COLLECTORS: readonly Collector[] = [
  processesCollector,
  dpkgCollector,
  rpmCollector,
  snapCollector,
  flatpakCollector,
  desktopEntriesCollector,
  portableCollector,
  macosAppsCollector,
  windowsProgramsCollector,
  windowsAppxCollector,
  windowsExecutablesCollector,
  networkCollector,
  artifactsCollector,
]

export function collectorsFor(os: Os): Collector[] {
  return ALL_COLLECTORS.filter((c) => c.os.includes(os))
}
