// Plain typed rows, one kind per data source (osquery-style). Collectors produce them; the matcher in
// policies/match.ts consumes them and never knows which collector or OS a row came from.

export type Os = 'linux' | 'darwin' | 'win32'

/** What inspecting an executable's bytes found: its hash and which of the policy's binary markers it contains. */
export interface FileFacts {
  sha256?: string
  /** The marker strings (as written in the policy) found in the file. */
  markers?: string[]
}

export interface ProcessRow extends FileFacts {
  kind: 'process'
  pid: number
  ppid: number
  /** The kernel's short name (Linux comm: truncated to 15 bytes; ps-list's name elsewhere). */
  name: string
  /** Absolute executable path as the kernel reports it (Linux /proc/PID/exe), without a " (deleted)" suffix. */
  exe?: string
  argv?: string[]
  uid?: number
  user?: string
  /** Start time, ms since the epoch. */
  startTime?: number
  /** macOS: bundle id and team id of the .app the executable lives in; Windows: PE ProductName. */
  bundleId?: string
  teamId?: string
  signer?: string
  peProductName?: string
}

export type PackageManager = 'deb' | 'rpm' | 'snap' | 'flatpak'

export interface PackageRow {
  kind: 'package'
  manager: PackageManager
  name: string
  version?: string
  /** `system`, or `user` for per-user installs (flatpak --user). */
  scope: 'system' | 'user'
  user?: string
  arch?: string
}

/** A macOS .app bundle. */
export interface AppBundleRow extends FileFacts {
  kind: 'app-bundle'
  path: string
  bundleId?: string
  name?: string
  version?: string
  /** Absolute path of CFBundleExecutable inside the bundle. */
  executable?: string
  teamId?: string
  signer?: string
  user?: string
}

/** A Windows uninstall registry key (Programs and Features). */
export interface WindowsProgramRow {
  kind: 'windows-program'
  hive: 'HKLM' | 'HKLM-WOW6432Node' | 'HKU'
  /** The key's own name, e.g. `{53F49750-...}_is1`. */
  keyName: string
  sid?: string
  user?: string
  displayName?: string
  displayVersion?: string
  publisher?: string
  installLocation?: string
  uninstallString?: string
  quietUninstallString?: string
}

/** A Windows AppX/MSIX package (Microsoft Store). */
export interface AppxRow {
  kind: 'appx'
  name: string
  packageFullName: string
  packageFamilyName: string
  publisher?: string
  version?: string
  installLocation?: string
  user?: string
}

/** An executable file found on disk: portable copies, AppImages, the target of a desktop entry, a PE in a user folder. */
export interface ExecutableRow extends FileFacts {
  kind: 'executable'
  path: string
  source: 'appimage' | 'portable' | 'desktop-entry' | 'pe'
  user?: string
  peProductName?: string
  peCompanyName?: string
  size?: number
}

/** A freedesktop .desktop launcher. */
export interface DesktopEntryRow {
  kind: 'desktop-entry'
  path: string
  /** File name without `.desktop`, e.g. `org.telegram.desktop`. */
  desktopId: string
  name?: string
  exec?: string
  startupWmClass?: string
  user?: string
}

/** An app data folder or file that exists (e.g. Telegram's tdata). */
export interface ArtifactRow {
  kind: 'artifact'
  path: string
  user?: string
}

/** A live network connection and the process that owns it. */
export interface ConnectionRow {
  kind: 'connection'
  protocol: 'tcp' | 'udp'
  localAddress: string
  localPort: number
  remoteAddress: string
  remotePort: number
  state?: string
  pid?: number
  processName?: string
}

export type Row =
  | ProcessRow
  | PackageRow
  | AppBundleRow
  | WindowsProgramRow
  | AppxRow
  | ExecutableRow
  | DesktopEntryRow
  | ArtifactRow
  | ConnectionRow

export type RowKind = Row['kind']

export interface UserHome {
  user: string
  uid?: number
  home: string
}

/** What the compiled policy asks collectors to look for beyond plain listing (so a scan does no needless I/O). */
export interface CollectNeeds {
  /** Hash executables (the policy lists sha256 rules). */
  hashes: boolean
  /** Binary markers to search executables for (empty: do not read file contents for markers). */
  markers: string[]
  /** Artifact path patterns to check for existence. */
  artifacts: string[]
  /** Lower-cased executable names the policy bans: portable-copy search looks for these names. */
  names: string[]
}

export interface FileInspector {
  /** Hash and marker-search one file; cached by file identity (device, inode, size, mtime). */
  inspect(path: string): Promise<FileFacts | undefined>
}

export interface CollectContext {
  os: Os
  homes: UserHome[]
  needs: CollectNeeds
  files: FileInspector
  /** Root to resolve absolute system paths against (tests point it at a fixture tree); default `/`. */
  root?: string
  /** Problems a collector skipped past without failing (one malformed bundle among many); scan output shows them. */
  warn?: (message: string) => void
}

export interface Collector {
  /** Stable name shown in scan output, e.g. `processes`, `dpkg`. */
  name: string
  os: readonly Os[]
  collect(ctx: CollectContext): Promise<Row[]>
}
