#!/usr/bin/env node
// Runs the TypeScript entry point straight from a checkout (tsx); standalone binaries bundle it instead (build/).
import { register } from 'tsx/esm/api'

register()
await import('../server/ctl/cli.ts')
