// A small line-chart renderer for benchmark reports: plain SVG text, no dependency. Time runs
// along x, shared by panels stacked one above the other; each panel has its own y axis, title,
// legend and series. Shaded bands and labelled vertical marks run across every panel (bursts,
// phases). Meant to stay readable at about 900×500 in a markdown page.

export interface Series {
  name: string;
  color: string;
  /** [x, y] in x order; a NaN y breaks the line. */
  points: ReadonlyArray<readonly [number, number]>;
  dashed?: boolean;
  /** Draw as a staircase (a count that holds its value until the next sample). */
  step?: boolean;
  /** In the panel's legend (default true): a series another panel already explains can stay out. */
  legend?: boolean;
}

export interface Panel {
  title: string;
  /** The y axis's label, e.g. "messages". */
  yLabel: string;
  series: Series[];
  /** The y axis starts at 0 and goes at least this high (default 1). */
  yMin?: number;
}

export interface Band {
  from: number;
  to: number;
  label: string;
}

export interface Mark {
  x: number;
  label: string;
}

export interface LineChart {
  title: string;
  xLabel: string;
  panels: Panel[];
  width?: number;
  height?: number;
  xMin?: number;
  xMax?: number;
  bands?: Band[];
  marks?: Mark[];
}

const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"';

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 10 ? v.toFixed(0) : String(Number(v.toPrecision(3))));
const px = (v: number) => v.toFixed(1);

/**
 * Round tick values in [min, max]: steps of 1, 2 or 5 × 10^k, about `count` of them. With
 * `cover`, the last tick is at or above max (an axis that must hold every value).
 */
export function niceTicks(min: number, max: number, count: number, cover = false): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const last = cover ? Math.ceil(max / step - 1e-9) * step : max;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= last + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Points → an SVG path, lifting the pen over NaN and outside [xMin, xMax]. */
function pathOf(series: Series, x: (v: number) => number, y: (v: number) => number, xMin: number, xMax: number): string {
  let d = '';
  let pen = false;
  let last: readonly [number, number] | undefined;
  for (const point of series.points) {
    const [px0, py0] = point;
    if (!Number.isFinite(py0) || px0 < xMin || px0 > xMax) {
      pen = false;
      last = undefined;
      continue;
    }
    if (pen && series.step && last) d += `H${px(x(px0))}V${px(y(py0))}`;
    else d += `${pen ? 'L' : 'M'}${px(x(px0))},${px(y(py0))}`;
    pen = true;
    last = point;
  }
  return d;
}

export function renderLineChart(chart: LineChart): string {
  const width = chart.width ?? 900;
  const height = chart.height ?? 500;
  const left = 64;
  const right = 16;
  const top = 34; // chart title
  const bottom = 40; // x tick labels and the x label
  const titleRow = 18; // each panel's title and legend, above its plot
  const gap = 10;
  const panels = chart.panels;
  const plotHeight = (height - top - bottom - panels.length * titleRow - (panels.length - 1) * gap) / panels.length;
  const plotWidth = width - left - right;

  const allX = panels.flatMap((p) => p.series.flatMap((s) => s.points.map(([x]) => x)));
  const xMin = chart.xMin ?? Math.min(...allX);
  const xMax = chart.xMax ?? Math.max(...allX);
  const x = (v: number) => left + ((v - xMin) / (xMax - xMin || 1)) * plotWidth;
  const xTicks = niceTicks(xMin, xMax, 12);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600" fill="#222">${escape(chart.title)}</text>`);

  const plotTops = panels.map((_, i) => top + titleRow + i * (plotHeight + titleRow + gap));
  const firstTop = plotTops[0]!;
  const lastBottom = plotTops.at(-1)! + plotHeight;

  // Bands and marks first, under everything; their labels above the first panel's plot.
  for (const band of chart.bands ?? []) {
    const from = x(Math.max(xMin, band.from));
    const to = x(Math.min(xMax, band.to));
    if (to <= from) continue;
    for (const plotTop of plotTops) out.push(`<rect x="${px(from)}" y="${px(plotTop)}" width="${px(Math.max(1, to - from))}" height="${px(plotHeight)}" fill="#8a8a8a" fill-opacity="0.12"/>`);
    out.push(`<text x="${px(from + 2)}" y="${px(firstTop + 10)}" fill="#555" font-size="10">${escape(band.label)}</text>`);
  }
  for (const mark of chart.marks ?? []) {
    if (mark.x < xMin || mark.x > xMax) continue;
    out.push(`<line x1="${px(x(mark.x))}" x2="${px(x(mark.x))}" y1="${px(firstTop)}" y2="${px(lastBottom)}" stroke="#777" stroke-dasharray="3,3"/>`);
    out.push(`<text x="${px(x(mark.x) + 2)}" y="${px(lastBottom - 3)}" fill="#555" font-size="10">${escape(mark.label)}</text>`);
  }

  panels.forEach((panel, i) => {
    const plotTop = plotTops[i]!;
    const plotBottom = plotTop + plotHeight;
    const allY = panel.series.flatMap((s) => s.points.filter(([px0]) => px0 >= xMin && px0 <= xMax).map(([, y]) => y)).filter(Number.isFinite);
    // The first panel carries the bands' labels: 8 % headroom there keeps the lines clear of them.
    const headroom = i === 0 && (chart.bands ?? []).length > 0 ? 1.08 : 1;
    const yTicks = niceTicks(0, Math.max(panel.yMin ?? 1, headroom * Math.max(0, ...allY)), 4, true);
    const yMax = yTicks.at(-1)! > 0 ? yTicks.at(-1)! : 1;
    const y = (v: number) => plotBottom - (v / yMax) * plotHeight;

    // Title left, legend right, in the row above the plot.
    out.push(`<text x="${left}" y="${px(plotTop - 5)}" font-size="12" font-weight="600" fill="#222">${escape(panel.title)}</text>`);
    let legendX = width - right;
    for (const series of [...panel.series].reverse().filter((s) => s.legend !== false)) {
      const textWidth = series.name.length * 6 + 6;
      legendX -= textWidth;
      out.push(`<text x="${px(legendX)}" y="${px(plotTop - 5)}" fill="#333">${escape(series.name)}</text>`);
      legendX -= 22;
      out.push(
        `<line x1="${px(legendX)}" x2="${px(legendX + 18)}" y1="${px(plotTop - 9)}" y2="${px(plotTop - 9)}" stroke="${series.color}" stroke-width="2.5"${series.dashed ? ' stroke-dasharray="5,3"' : ''}/>`,
      );
      legendX -= 10;
    }

    // Grid, axes, tick labels.
    for (const v of yTicks) {
      out.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${px(y(v))}" y2="${px(y(v))}" stroke="#e4e4e4"/>`);
      out.push(`<text x="${left - 5}" y="${px(y(v) + 4)}" text-anchor="end" fill="#444">${fmt(v)}</text>`);
    }
    for (const v of xTicks) out.push(`<line x1="${px(x(v))}" x2="${px(x(v))}" y1="${px(plotTop)}" y2="${px(plotBottom)}" stroke="#f0f0f0"/>`);
    out.push(`<rect x="${left}" y="${px(plotTop)}" width="${px(plotWidth)}" height="${px(plotHeight)}" fill="none" stroke="#999"/>`);
    const mid = plotTop + plotHeight / 2;
    out.push(`<text transform="translate(14,${px(mid)}) rotate(-90)" text-anchor="middle" fill="#333">${escape(panel.yLabel)}</text>`);

    for (const series of panel.series) {
      const d = pathOf(series, x, y, xMin, xMax);
      if (d === '') continue;
      out.push(
        `<path d="${d}" fill="none" stroke="${series.color}" stroke-width="1.8" stroke-linejoin="round"${series.dashed ? ' stroke-dasharray="5,3"' : ''}/>`,
      );
    }
  });

  for (const v of xTicks) out.push(`<text x="${px(x(v))}" y="${px(lastBottom + 14)}" text-anchor="middle" fill="#444">${fmt(v)}</text>`);
  out.push(`<text x="${px(left + plotWidth / 2)}" y="${height - 8}" text-anchor="middle" fill="#333">${escape(chart.xLabel)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
