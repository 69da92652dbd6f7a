/**
 * A small inline SVG line of the primary metric over the notebook's runs, oldest to newest:
 * drawn here with no chart library (nothing to load, nothing from a CDN).
 */
import { Run } from './api';

const W = 220;
const H = 40;
const PAD = 4;
const SVG = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  return node;
}

/** The trend of the most recent run's primary metric (runs come newest first), or null. */
export function trend(runs: Run[]): HTMLElement | null {
  const metric = runs.find(r => r.primary_metric)?.primary_metric?.name;
  if (!metric) {
    return null;
  }
  const points = runs.filter(r => r.primary_metric?.name === metric && Number.isFinite(r.primary_metric.value))
    .slice(0, 50).reverse().map(r => r.primary_metric!.value);
  const box = document.createElement('div');
  box.className = 'mlops-Trend';
  const lo = Math.min(...points);
  const hi = Math.max(...points);
  const x = (i: number) => PAD + (points.length === 1 ? (W - 2 * PAD) / 2 : (i * (W - 2 * PAD)) / (points.length - 1));
  const y = (v: number) => (hi === lo ? H / 2 : PAD + ((hi - v) * (H - 2 * PAD)) / (hi - lo));
  const chart = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `${metric} over the last ${points.length} runs` });
  chart.append(svg('polyline', {
    points: points.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' '), fill: 'none',
    class: 'mlops-TrendLine'
  }));
  const last = points.length - 1;
  chart.append(svg('circle', { cx: x(last), cy: y(points[last]), r: 2.5, class: 'mlops-TrendDot' }));
  const label = document.createElement('div');
  label.className = 'mlops-TrendLabel';
  const short = (v: number) => String(Number(v.toPrecision(3)));
  label.textContent = `${metric}: last ${short(points[last])} · high ${short(hi)} · low ${short(lo)} (${points.length} runs)`;
  box.append(chart, label);
  return box;
}
