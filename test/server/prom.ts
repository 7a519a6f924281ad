// A strict parser of the Prometheus text exposition format (0.0.4), for tests: it throws on anything a Prometheus
// server would reject (bad names, labels, numbers, samples without a TYPE, histograms whose buckets do not add up).

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}
export interface Family {
  name: string
  type: string
  help: string
  samples: Sample[]
}

function fail(n: number, why: string): never {
  throw new Error(`line ${n + 1}: ${why}`)
}

export function parsePrometheus(text: string): Map<string, Family> {
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
  const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/
  const families = new Map<string, Family>()
  const num = (s: string, n: number) => {
    if (s === '+Inf') return Number.POSITIVE_INFINITY
    if (s === '-Inf') return Number.NEGATIVE_INFINITY
    if (s === 'NaN') return Number.NaN
    if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) fail(n, `bad number "${s}"`)
    return Number(s)
  }
  const familyOf = (sample: string) => {
    for (const suffix of ['_bucket', '_sum', '_count', '']) {
      if (!sample.endsWith(suffix)) continue
      const f = families.get(sample.slice(0, sample.length - suffix.length))
      if (f && (suffix === '' || f.type === 'histogram' || f.type === 'summary')) return f
    }
    return undefined
  }
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline')
  const lines = text.slice(0, -1).split('\n')
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!
    if (line === '') continue
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (!m) continue // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string]
      if (!NAME.test(name)) fail(n, `bad metric name ${name}`)
      const f = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] }
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) fail(n, `bad type ${rest}`)
        if (f.samples.length > 0) fail(n, `TYPE after samples of ${name}`)
        f.type = rest
      } else f.help = rest
      families.set(name, f)
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line)
    if (!m) fail(n, `not a sample: ${line}`)
    const labels: Record<string, string> = {}
    let rest = m[3] ?? ''
    while (rest.length > 0) {
      const lm = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest)
      if (!lm) fail(n, `bad labels: ${m[3]}`)
      const [all, key, raw] = lm as unknown as [string, string, string]
      if (!LABEL.test(key)) fail(n, `bad label name ${key}`)
      if (key in labels) fail(n, `label ${key} twice`)
      labels[key] = raw.replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c))
      rest = rest.slice(all.length)
    }
    const f = familyOf(m[1]!)
    if (!f) fail(n, `sample ${m[1]} has no TYPE`)
    f.samples.push({ name: m[1]!, labels, value: num(m[4]!, n) })
  }
  // Histograms: cumulative buckets ending in +Inf, equal to _count, per label set.
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue
    const series = new Map<string, Sample[]>()
    for (const s of f.samples) {
      const { le, ...rest } = s.labels
      const key = JSON.stringify(rest)
      series.set(key, [...(series.get(key) ?? []), s])
    }
    for (const [key, list] of series) {
      const buckets = list.filter((s) => s.name.endsWith('_bucket'))
      for (let i = 1; i < buckets.length; i++)
        if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`${f.name}${key}: buckets not cumulative`)
      const inf = buckets.find((b) => b.labels.le === '+Inf')
      const count = list.find((s) => s.name.endsWith('_count'))
      if (!inf || !count || inf.value !== count.value) throw new Error(`${f.name}${key}: +Inf bucket != _count`)
    }
  }
  return families
}
