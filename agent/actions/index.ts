// The enforcement ladder: findings in, one ActionResult per action taken out. Order: kill (so nothing holds the file
// open or respawns), quarantine, uninstall, block-network (one aggregated state for every app that asks for it),
// notify (once per app). `report`-only and exempted findings never change anything.
import type { BundlePayload } from '../../policies/schema.js'
import type { Os } from '../collectors/types.js'
import { applyNetworkBlock, type CidrGroup, type NetworkBlockOptions } from './block-network.js'
import { type KillOptions, kill } from './kill.js'
import { type NotifyOptions, notify } from './notify.js'
import { quarantine, quarantineTarget } from './quarantine.js'
import { buildSafetyContext, type SafetyContext } from './safety.js'
import type { ActionResult, CommandRunner, Finding } from './types.js'
import { baseOf, done, failed, noop } from './types.js'
import { type UninstallOptions, uninstall } from './uninstall.js'

export * from './types.js'
export { applyNetworkBlock } from './block-network.js'
export { kill, killPid } from './kill.js'
export { notify } from './notify.js'
export { listQuarantine, quarantine, restoreQuarantine } from './quarantine.js'
export { buildSafetyContext } from './safety.js'
export { uninstall } from './uninstall.js'

/** What the daemon passes (agent/sync/enforcer.ts), plus optional overrides for tests and one-shot scans. */
export interface EnforceContext {
  stateDir: string
  os: Os
  /** The policy in force: block-network takes each app's domains and CIDRs from it. */
  bundle?: BundlePayload
  /** Built once per call when absent (the agent and its ancestors are re-read every pass). */
  safety?: SafetyContext
  /** External commands (uninstall, firewall, notify). */
  runner?: CommandRunner
  kill?: KillOptions
  uninstall?: Omit<UninstallOptions, 'runner' | 'stateDir'>
  network?: Omit<NetworkBlockOptions, 'runner' | 'os'>
  notify?: Omit<NotifyOptions, 'runner' | 'os'>
}

export interface ResolvedEnforceContext extends EnforceContext {
  safety: SafetyContext
}

/** The context builder: fills in the safety context (agent pid, ancestors, protected paths incl. the state dir). */
export async function buildEnforceContext(ctx: EnforceContext): Promise<ResolvedEnforceContext> {
  const safety = ctx.safety ?? (await buildSafetyContext({ os: ctx.os, stateDir: ctx.stateDir }))
  return { ...ctx, safety }
}

/** Whether a finding may change anything (not exempted, asks for more than `report`). */
export function isActionable(f: Finding): boolean {
  return !f.exempted && f.actions.some((a) => a !== 'report')
}

/** Domains and CIDRs of every app in the bundle whose class asks for block-network (the whole desired state). */
export function networkRequest(bundle: BundlePayload | undefined, findings: readonly Finding[] = []) {
  const domains = new Set<string>()
  const groups = new Map<string, Set<string>>()
  const addCidr = (app: string, c: string) => {
    const g = groups.get(app) ?? new Set<string>()
    g.add(c)
    groups.set(app, g)
  }
  for (const app of bundle?.apps ?? []) {
    if (!app.actions.includes('block-network')) continue
    for (const d of app.match.network?.domains ?? []) domains.add(d)
    for (const c of app.match.network?.cidrs ?? []) addCidr(app.id, c)
  }
  // Without a bundle, what the findings themselves matched on the network is all we know.
  if (!bundle) {
    for (const f of findings) {
      if (isActionable(f) && f.actions.includes('block-network') && f.signal === 'network') addCidr(f.appId, f.matched)
    }
  }
  const cidrGroups: CidrGroup[] = [...groups].map(([app, set]) => ({ app, cidrs: [...set] }))
  return { domains: [...domains], groups: cidrGroups }
}

/** Apply every finding's actions in ladder order. Never throws: a failing action is a `failed` result. */
export async function enforce(findings: readonly Finding[], context: EnforceContext): Promise<ActionResult[]> {
  const out: ActionResult[] = []
  // Report-only and exempted findings: one result saying nothing changed.
  for (const f of findings) {
    if (isActionable(f)) continue
    const why = f.exempted ? `exempt (${f.exempted})` : 'report only'
    out.push(noop(baseOf('report', f), `${why}: nothing changed`))
  }
  const todo = findings.filter(isActionable)
  if (!todo.length) return out
  const ctx = await buildEnforceContext(context)
  const safe = async (f: Finding, action: ActionResult['action'], fn: () => Promise<ActionResult>) => {
    try {
      return await fn()
    } catch (err) {
      return failed(baseOf(action, f), err instanceof Error ? err.message : String(err))
    }
  }
  const wants = (a: ActionResult['action']) => todo.filter((f) => f.actions.includes(a))

  // Quarantine targets are resolved while processes still run (an AppImage's file is named in its environment).
  const targets = new Map<Finding, string | undefined>()
  for (const f of wants('quarantine')) targets.set(f, await quarantineTarget(f, ctx.os).catch(() => undefined))

  // kill: one per pid, all in parallel (each tree is frozen and killed on its own).
  const byPid = new Map<number, Finding[]>()
  const killNoPid: Finding[] = []
  for (const f of wants('kill')) {
    if (f.row.kind !== 'process') {
      killNoPid.push(f)
      continue
    }
    const list = byPid.get(f.row.pid) ?? []
    list.push(f)
    byPid.set(f.row.pid, list)
  }
  const killResults = await Promise.all(
    [...byPid.values()].map(async ([first, ...rest]) => {
      const f = first as Finding
      const r = await safe(f, 'kill', () => kill(f, ctx.safety, ctx.kill))
      return [r, ...rest.map((o) => ({ ...r, ...baseOf('kill', o) }))]
    }),
  )
  out.push(...killResults.flat())
  for (const f of killNoPid) out.push(await safe(f, 'kill', () => kill(f, ctx.safety, ctx.kill)))

  // quarantine: one per path (two findings for the same file share the result).
  const byPath = new Map<string, ActionResult>()
  for (const f of wants('quarantine')) {
    const target = targets.get(f)
    const prior = target ? byPath.get(target) : undefined
    if (prior) {
      out.push({ ...prior, ...baseOf('quarantine', f) })
      continue
    }
    const r = await safe(f, 'quarantine', () =>
      quarantine(f, ctx.safety, { stateDir: ctx.stateDir, os: ctx.os, target }),
    )
    if (target) byPath.set(target, r)
    out.push(r)
  }

  // uninstall: sequential (package managers hold a global lock), one per subject.
  const uninstalled = new Map<string, ActionResult>()
  for (const f of wants('uninstall')) {
    const prior = uninstalled.get(f.subject)
    if (prior) {
      out.push({ ...prior, ...baseOf('uninstall', f) })
      continue
    }
    const r = await safe(f, 'uninstall', () =>
      uninstall(f, ctx.safety, { ...ctx.uninstall, runner: ctx.runner, stateDir: ctx.stateDir }),
    )
    uninstalled.set(f.subject, r)
    out.push(r)
  }

  // block-network: one aggregated apply; one result per app that asked for it.
  const netFindings = wants('block-network')
  if (netFindings.length) {
    const req = networkRequest(ctx.bundle, netFindings)
    let applied: Awaited<ReturnType<typeof applyNetworkBlock>> | undefined
    let error: string | undefined
    try {
      applied = await applyNetworkBlock(req, { ...ctx.network, runner: ctx.runner, os: ctx.os })
    } catch (err) {
      error = err instanceof Error ? err.message : String(err)
    }
    const perApp = new Map<string, Finding>()
    for (const f of netFindings) if (!perApp.has(f.appId)) perApp.set(f.appId, f)
    for (const f of perApp.values()) {
      const base = baseOf('block-network', f)
      if (!applied) {
        out.push(failed(base, error ?? 'unknown error'))
        continue
      }
      const extra = {
        domains: applied.domains,
        cidrs: applied.cidrs,
        hostsPath: applied.hostsPath,
        firewall: applied.firewall,
        commands: applied.commands,
      }
      if (!applied.ok) out.push(failed(base, applied.errors.join('; '), extra))
      else {
        const what = `${applied.domains.length} domain(s) in the hosts file, ${applied.cidrs.length} CIDR(s) via ${applied.firewall}`
        out.push(applied.changed ? done(base, `blocked ${what}`, extra) : noop(base, `already blocked: ${what}`, extra))
      }
    }
  }

  // notify: once per app, after the rest so the message can say what was done.
  const notified = new Set<string>()
  for (const f of wants('notify')) {
    if (notified.has(f.appId)) continue
    notified.add(f.appId)
    out.push(await safe(f, 'notify', () => notify(f, { ...ctx.notify, runner: ctx.runner, os: ctx.os })))
  }
  return out
}
