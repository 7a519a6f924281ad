// The daemon's view of enforcement: findings in, action results out. The real ladder lives in agent/actions (owned
// there); this adapter only decides WHETHER to call it: `report`-only findings (audit classes, exemptions) never
// reach it, so an audit device cannot change anything even if an action module misbehaves.
import type { BundlePayload } from '../../policies/schema.js'
import type { Finding } from '../../policies/match.js'
import type { Os } from '../collectors/types.js'
import { enforce } from '../actions/index.js'
import type { ActionResult } from '../actions/types.js'

export interface EnforceContext {
  stateDir: string
  os: Os
  bundle: BundlePayload
}

export type Enforcer = (findings: Finding[], ctx: EnforceContext) => Promise<ActionResult[]>

/** Findings that ask for more than `report` (pure). */
export function actionable(findings: readonly Finding[]): Finding[] {
  return findings.filter((f) => !f.exempted && f.actions.some((a) => a !== 'report'))
}

/** The actions module's ladder, given only the actionable findings. */
export async function defaultEnforcer(): Promise<Enforcer> {
  return (findings, ctx) => enforce(actionable(findings), ctx)
}
