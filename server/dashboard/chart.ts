// Compliance over time per class as inline SVG (no script, presentation attributes only so the CSP can stay strict),
// with the same numbers in a table for screen readers and anyone who prefers rows.
import { html, type Safe } from './html.js'

export interface Series {
  class: string
  points: { at: number; total: number; ok: number }[]
}

const COLORS = ['#1d4ed8', '#c2410c', '#047857', '#7c3aed', '#be123c', '#0e7490', '#a16207', '#4b5563']
const W = 760
const H = 250
const L = 44
const R = 16
const T = 14
const B = 30

const pct = (p: { total: number; ok: number }) => (p.total === 0 ? 100 : (100 * p.ok) / p.total)
const pad = (n: number) => String(n).padStart(2, '0')
const label = (ms: number, span: number) => {
  const d = new Date(ms)
  return span > 2 * 86_400_000
    ? `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
    : `${pad(d.getUTCHours())}:00`
}

export function complianceChart(series: Series[], windowLabel: string): Safe {
  const all = series.flatMap((s) => s.points.map((p) => p.at))
  if (all.length === 0) return html`<p class="empty">No history yet: a snapshot is taken every hour.</p>`
  const min = Math.min(...all)
  const max = Math.max(...all)
  const span = Math.max(max - min, 3_600_000)
  const x = (t: number) => L + ((t - min) / span) * (W - L - R)
  const y = (v: number) => T + (1 - v / 100) * (H - T - B)
  const grid = [0, 25, 50, 75, 100].map(
    (v) => html`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb" stroke-width="1"/>
      <text x="${L - 8}" y="${y(v) + 4}" text-anchor="end" font-size="11" fill="#6b7280">${v}%</text>`,
  )
  const ticks = [min, min + span / 2, min + span].map(
    (t, i) =>
      html`<text x="${x(t)}" y="${H - 8}" text-anchor="${['start', 'middle', 'end'][i]}" font-size="11" fill="#6b7280">${label(t, span)}</text>`,
  )
  const lines = series.map((s, i) => {
    const color = COLORS[i % COLORS.length]
    const pts = s.points.map((p) => `${x(p.at).toFixed(1)},${y(pct(p)).toFixed(1)}`).join(' ')
    return html`<g>
      ${s.points.length > 1 ? html`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2.2" stroke-linejoin="round"/>` : ''}
      ${s.points.map(
        (p) => html`<circle cx="${x(p.at).toFixed(1)}" cy="${y(pct(p)).toFixed(1)}" r="3.2" fill="${color}">
          <title>${s.class}: ${pct(p).toFixed(1)}% (${p.ok}/${p.total}) at ${new Date(p.at).toISOString().slice(0, 16)}Z</title></circle>`,
      )}
    </g>`
  })
  const summary = series
    .map((s) => {
      const last = s.points[s.points.length - 1]
      return last ? `${s.class} ${pct(last).toFixed(0)}%` : ''
    })
    .filter(Boolean)
    .join(', ')
  return html`<figure class="chart">
    <svg class="plot" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="chart-title chart-desc">
      <title id="chart-title">Compliance over time per class (${windowLabel})</title>
      <desc id="chart-desc">Share of each class's devices compliant or remediated. Latest: ${summary}.</desc>
      ${grid}${ticks}${lines}
    </svg>
    <ul class="legend">${series.map(
      (s, i) =>
        html`<li><svg class="swatch" width="12" height="12" aria-hidden="true"><rect width="12" height="12" rx="2" fill="${COLORS[i % COLORS.length]}"/></svg>${s.class}</li>`,
    )}</ul>
    <details><summary>Show the numbers</summary>
      <div class="table-wrap"><table>
        <caption>Compliance snapshots <span class="muted">(compliant + remediated / devices)</span></caption>
        <thead><tr><th scope="col">Time (UTC)</th><th scope="col">Class</th><th scope="col" class="num">Compliant</th>
          <th scope="col" class="num">Devices</th><th scope="col" class="num">Share</th></tr></thead>
        <tbody>${series.flatMap((s) =>
          s.points.map(
            (
              p,
            ) => html`<tr><td>${new Date(p.at).toISOString().slice(0, 16).replace('T', ' ')}</td><th scope="row">${s.class}</th>
              <td class="num">${p.ok}</td><td class="num">${p.total}</td><td class="num">${pct(p).toFixed(1)}%</td></tr>`,
          ),
        )}</tbody>
      </table></div>
    </details>
  </figure>`
}
