// Policy set -> one bundle per device class: only the apps and actions that apply to that class (pure).
import type { BundleApp, BundlePayload, Exemption, PolicyFile } from './schema.js'

export const DEFAULT_TTL_DAYS = 7

/** Every device class any policy assigns actions to, sorted. */
export function policyClasses(policies: readonly PolicyFile[]): string[] {
  return [...new Set(policies.flatMap((p) => Object.keys(p.assignments)))].sort()
}

export function exemptionActive(e: Exemption, now: Date): boolean {
  return Date.parse(e.expiresAt) > now.getTime()
}

/** The apps and live exemptions that apply to `cls` (no version or times: what a push compares). */
export function bundleContent(policies: readonly PolicyFile[], cls: string, now = new Date()) {
  const apps: BundleApp[] = []
  const exemptions: Exemption[] = []
  for (const p of policies) {
    const assignment = p.assignments[cls]
    if (!assignment) continue
    for (const app of p.apps) {
      apps.push({
        policy: p.id,
        id: app.id,
        name: app.name,
        match: app.match,
        actions: assignment.actions,
        ...(assignment.message ? { message: assignment.message } : {}),
      })
    }
    for (const e of p.exemptions ?? []) {
      if ((e.class === cls || (e.device && !e.class)) && exemptionActive(e, now)) exemptions.push(e)
    }
  }
  return { apps, exemptions }
}

export function compileBundle(
  policies: readonly PolicyFile[],
  cls: string,
  opts: { version: number; now?: Date; ttlDays?: number },
): BundlePayload {
  const now = opts.now ?? new Date()
  const ttl = (opts.ttlDays ?? DEFAULT_TTL_DAYS) * 86_400_000
  return {
    schema: 1,
    class: cls,
    version: opts.version,
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttl).toISOString(),
    ...bundleContent(policies, cls, now),
  }
}
