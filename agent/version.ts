// The agent version reported at enrollment and in heartbeats: the package version (inlined into built binaries).
import pkg from '../package.json' with { type: 'json' }

export const AGENT_VERSION: string = pkg.version
