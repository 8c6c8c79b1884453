// Chart.js, registered piece by piece so the bundle carries only the bar and line charts it draws.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
  type Plugin,
} from "chart.js";

import type { BreakdownRow, TrendRow } from "./api";
import { num, pct } from "./format";
import { t } from "./i18n";

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Legend,
  Tooltip,
);
Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily || "sans-serif";
Chart.defaults.color = "#1f2937";
Chart.defaults.animation = false; // nothing to wait for, on screen or on paper

// The same hues as the status badges (style.css); the table beside each chart says it in words too.
export const STATUS_COLOURS: Record<string, string> = {
  met: "#1a7f37",
  behind: "#c2410c",
  no_target: "#64748b",
  no_data: "#cbd5e1",
};
const TARGET_COLOUR = "#1d4ed8";

/** Each bar's target as a dashed rule across the bar (a bullet chart's marker), read from the "line"
 * dataset, which itself draws nothing but gives the legend entry and the tooltip. */
const targetRules: Plugin<"bar"> = {
  id: "cdhtTargetRules",
  afterDatasetsDraw(chart) {
    const targets = chart.data.datasets[1]?.data as (number | null)[] | undefined;
    const bars = chart.getDatasetMeta(0).data as unknown as { x: number; width: number }[];
    if (!targets) return;
    const { ctx } = chart;
    ctx.save();
    ctx.strokeStyle = TARGET_COLOUR;
    ctx.lineWidth = 3;
    ctx.setLineDash([6, 4]);
    bars.forEach((bar, i) => {
      const target = targets[i];
      if (target === null || target === undefined) return;
      const y = chart.scales.y.getPixelForValue(target);
      ctx.beginPath();
      ctx.moveTo(bar.x - bar.width / 2 - 8, y);
      ctx.lineTo(bar.x + bar.width / 2 + 8, y);
      ctx.stroke();
    });
    ctx.restore();
  },
};

const charts = new WeakMap<HTMLCanvasElement, Chart>();

function draw(canvas: HTMLCanvasElement, config: ChartConfiguration): Chart {
  charts.get(canvas)?.destroy();
  const chart = new Chart(canvas, config);
  charts.set(canvas, chart);
  return chart;
}

/** Bars of the children, highest first (rows arrive sorted), each child's target as a dashed line;
 * clicking a bar calls `onPick` with that child. */
export function breakdownChart(
  canvas: HTMLCanvasElement,
  rows: BreakdownRow[],
  onPick: (row: BreakdownRow) => void,
): Chart {
  const hasTarget = rows.some((row) => row.target !== null);
  const config: ChartConfiguration<"bar" | "line"> = {
    type: "bar",
    data: {
      labels: rows.map((row) => row.name),
      datasets: [
        {
          type: "bar",
          label: t("actual"),
          data: rows.map((row) => row.actual ?? 0),
          backgroundColor: rows.map((row) => STATUS_COLOURS[row.status]),
          borderColor: "#1f2937",
          borderWidth: 1,
          maxBarThickness: 90,
          pointStyle: "rect",
          order: 2,
        },
        ...(hasTarget
          ? [
              {
                type: "line" as const,
                label: t("target"),
                data: rows.map((row) => row.target),
                borderColor: TARGET_COLOUR,
                backgroundColor: TARGET_COLOUR,
                borderDash: [6, 4],
                borderWidth: 3,
                showLine: false,
                pointStyle: "line" as const,
                pointRadius: 0,
                pointHitRadius: 12,
                order: 1,
              },
            ]
          : []),
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        y: { beginAtZero: true, max: 100, title: { display: true, text: "%" } },
        x: { ticks: { autoSkip: false, maxRotation: 45 } },
      },
      plugins: {
        legend: { position: "bottom", labels: { usePointStyle: true, padding: 16 } },
        tooltip: {
          callbacks: {
            label: (item) => {
              const row = rows[item.dataIndex];
              if (item.dataset.type === "line") return `${t("target")}: ${pct(row.target)}`;
              return `${t("actual")}: ${pct(row.actual)} (${num(row.numerator)}/${num(row.denominator)}) — ${t(row.status)}`;
            },
          },
        },
      },
      onClick: (_event, elements) => {
        // A click on a bar, or on the target rule above it, opens that unit.
        const hit = elements[0];
        if (hit) onPick(rows[hit.index]);
      },
      onHover: (event, elements) => {
        const target = event.native?.target as HTMLElement | undefined;
        if (target) target.style.cursor = elements.length ? "pointer" : "default";
      },
    },
  };
  return draw(canvas, { ...config, plugins: [targetRules] } as ChartConfiguration);
}

/** The metric's actual share year by year, with the plan's target path (a step at each target year). */
export function trendChart(canvas: HTMLCanvasElement, rows: TrendRow[]): Chart {
  const config: ChartConfiguration<"line"> = {
    type: "line",
    data: {
      labels: rows.map((row) => String(row.year)),
      datasets: [
        {
          label: t("actual"),
          data: rows.map((row) => row.actual),
          borderColor: "#0f766e",
          backgroundColor: rows.map((row) => STATUS_COLOURS[row.status]),
          pointRadius: 5,
          pointStyle: "circle",
          borderWidth: 3,
          spanGaps: false,
        },
        {
          label: t("target"),
          data: rows.map((row) => row.target),
          borderColor: TARGET_COLOUR,
          backgroundColor: TARGET_COLOUR,
          borderDash: [6, 4],
          pointStyle: "line",
          pointRadius: 8,
          pointBorderWidth: 3,
          borderWidth: 2,
          spanGaps: true,
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, max: 100, title: { display: true, text: "%" } } },
      plugins: {
        legend: { position: "bottom", labels: { usePointStyle: true, padding: 16 } },
        tooltip: {
          callbacks: {
            label: (item) => {
              const row = rows[item.dataIndex];
              if (item.datasetIndex === 1) return `${t("target")}: ${pct(row.target)}`;
              return `${t("actual")}: ${pct(row.actual)} (${num(row.numerator)}/${num(row.denominator)}) — ${t(row.status)}`;
            },
          },
        },
      },
    },
  };
  return draw(canvas, config as ChartConfiguration);
}

/** Redraw every chart at its container's size (before printing: paper is narrower than the screen). */
export function resizeAll(): void {
  for (const chart of Object.values(Chart.instances)) chart.resize();
}
