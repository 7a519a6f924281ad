// The daemon's view of enforcement: findings in, action results out. The real ladder lives in agent/actions (owned
// there); this adapter only decides WHETHER to call it: `report`-only findings (audit classes, exemptions) never
// reach it, so an audit device cannot change anything even if an action module misbehaves.
import type { BundlePayload } from '../../policies/schema.js'
import type { Finding } from '../../policies/match.js'
import type { Os } from '../collectors/types.js'
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

/**
 * The actions module's `enforce`, loaded lazily (the watcher must not wait for it at startup). Until that module
 * exists the fallback runs the two actions that do (kill, quarantine) in ladder order and marks the rest pending.
 */
export async function defaultEnforcer(): Promise<Enforcer> {
  const spec = '../actions/index.js'
  try {
    const mod = (await import(spec)) as { enforce?: (findings: Finding[], ctx: unknown) => Promise<unknown> }
    if (typeof mod.enforce === 'function') {
      const enforce = mod.enforce
      return async (findings, ctx) => normalizeResults(await enforce(findings, ctx))
    }
  } catch {}
  return fallbackEnforcer
}

function normalizeResults(r: unknown): ActionResult[] {
  if (Array.isArray(r)) return r as ActionResult[]
  const o = r as { results?: unknown; actions?: unknown } | undefined
  if (Array.isArray(o?.results)) return o.results as ActionResult[]
  if (Array.isArray(o?.actions)) return o.actions as ActionResult[]
  return []
}

const fallbackEnforcer: Enforcer = async (findings, ctx) => {
  const { buildSafetyContext } = await import('../actions/safety.js')
  const { kill } = await import('../actions/kill.js')
  const { quarantine } = await import('../actions/quarantine.js')
  const safety = await buildSafetyContext({ os: ctx.os, stateDir: ctx.stateDir })
  const out: ActionResult[] = []
  await Promise.all(
    actionable(findings).map(async (f) => {
      for (const a of f.actions) {
        if (a === 'report') continue
        if (a === 'kill') out.push(await kill(f, safety))
        else if (a === 'quarantine') out.push(await quarantine(f, safety, { stateDir: ctx.stateDir, os: ctx.os }))
        else {
          out.push({
            action: a,
            subject: f.subject,
            appId: f.appId,
            policy: f.policy,
            signal: f.signal,
            ok: false,
            status: 'refused',
            detail: `${a} is not available in this agent build`,
            reason: `refused: ${a} is not available in this agent build`,
            at: new Date().toISOString(),
          })
        }
      }
    }),
  )
  return out
}
