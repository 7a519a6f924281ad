// The two systeminformation modules the agent uses, imported on their own: the package index loads all ~20 of its
// modules (cpu, docker, wifi, ...), ~700 KB the resident agent would parse and keep. Typed from the package's own
// declarations.
declare module 'systeminformation/lib/osinfo.js' {
  export const osInfo: typeof import('systeminformation').osInfo
  export const uuid: typeof import('systeminformation').uuid
}
declare module 'systeminformation/lib/users.js' {
  export const users: typeof import('systeminformation').users
}
