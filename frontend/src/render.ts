// Each section of the page drawn from what the API answered: a table for every chart (the numbers in
// words for screen readers and paper), statuses with an icon and a word beside their colour.

import {
  ApiError,
  type Alert,
  type Alerts,
  type Breakdown,
  type BreakdownRow,
  type Completeness,
  type Metric,
  type MetricRow,
  type Progress,
  type Trend,
  type Unit,
} from "./api";
import { breakdownChart, trendChart } from "./charts";
import { clear, h } from "./dom";
import { day, gap, num, pct, statusBadge } from "./format";
import { kindName, lang, t } from "./i18n";

/** What a section shows: nothing yet, loading, data, or the API's refusal. */
export type Loaded<T> = { state: "idle" } | { state: "loading" } | { state: "ready"; data: T } | { state: "error"; error: unknown };

export function metricTitle(metrics: Map<string, Metric>, code: string): string {
  const metric = metrics.get(code);
  if (!metric) return code;
  return lang() === "vi" ? (metric.title_vi ?? metric.title) : metric.title;
}

function metricCounts(metrics: Map<string, Metric>, code: string): string {
  const m = metrics.get(code);
  if (!m) return "";
  const vi = lang() === "vi";
  return t("countsHint", {
    num: t("numerator"),
    numText: (vi ? m.numerator_vi : undefined) ?? m.numerator,
    den: t("denominator"),
    denText: (vi ? m.denominator_vi : undefined) ?? m.denominator,
  });
}

/** The message for a refused or failed request: the API decides, the page explains. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403) return t("forbidden");
    if (error.status === 404) return t("notFound");
    if (error.status === 0) return t("offline");
    return t("failed", { status: error.status, message: error.message });
  }
  return t("failed", { status: "?", message: String(error) });
}

/** Set the section's state attributes; true when it has data to draw. */
function frame<T>(section: HTMLElement, body: Element, loaded: Loaded<T>): loaded is { state: "ready"; data: T } {
  section.dataset.state = loaded.state;
  section.setAttribute("aria-busy", String(loaded.state === "loading"));
  if (loaded.state === "loading") {
    if (!body.childElementCount) clear(body, h("p", { class: "note" }, t("loading")));
    return false;
  }
  if (loaded.state === "error") {
    const forbidden = loaded.error instanceof ApiError && [403, 404].includes(loaded.error.status);
    clear(body, h("p", { class: forbidden ? "note refused" : "note error", role: "status" }, errorMessage(loaded.error)));
    return false;
  }
  if (loaded.state === "idle") clear(body);
  return loaded.state === "ready";
}

function numberCell(text: string, col: string): HTMLTableCellElement {
  return h("td", { class: "num", "data-col": col }, text);
}

function statusCell(status: string): HTMLTableCellElement {
  return h("td", { "data-col": "status" }, statusBadge(status));
}

function countsCell(row: MetricRow, hint: string): HTMLTableCellElement {
  return h("td", { class: "num", "data-col": "counts", title: hint || null }, `${num(row.numerator)} / ${num(row.denominator)}`);
}

function targetCell(row: MetricRow): HTMLTableCellElement {
  const cell = numberCell(pct(row.target), "target");
  if (row.target !== null && row.target_year !== null) {
    cell.append(h("span", { class: "small" }, ` (${t("targetYear", { year: row.target_year })})`));
  }
  return cell;
}

export function renderProgress(
  section: HTMLElement,
  loaded: Loaded<Progress>,
  ctx: { metrics: Map<string, Metric>; unit: Unit | null; year: number; selected: string | null },
  onBreakdown: (metric: string) => void,
): void {
  const body = section.querySelector(".body")!;
  if (!frame(section, body, loaded)) return;
  const rows = loaded.data.metrics;
  const count = (status: string) => rows.filter((row) => row.status === status).length;
  const summary = h(
    "p",
    { class: "summary" },
    t("summary", { met: count("met"), behind: count("behind"), noTarget: count("no_target"), noData: count("no_data") }),
  );
  const table = h(
    "table",
    { class: "data", id: "progress-table" },
    h("caption", {}, t("progressCaption", { unit: ctx.unit?.name ?? "", year: ctx.year })),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, t("metric")),
        h("th", { scope: "col", class: "num" }, t("actual")),
        h("th", { scope: "col", class: "num" }, t("target")),
        h("th", { scope: "col", class: "num" }, t("gap")),
        h("th", { scope: "col" }, t("status")),
        h("th", { scope: "col", class: "num" }, t("counts")),
      ),
    ),
  );
  const tbody = h("tbody");
  for (const row of rows) {
    const title = metricTitle(ctx.metrics, row.metric);
    tbody.append(
      h(
        "tr",
        { "data-metric": row.metric, class: row.metric === ctx.selected ? "selected" : null },
        h(
          "th",
          { scope: "row", "data-col": "metric" },
          // The metric's name chooses it for the breakdown and the trend below.
          button(title, "link metric-pick", () => onBreakdown(row.metric), null, t("showBreakdown")),
        ),
        numberCell(pct(row.actual), "actual"),
        targetCell(row),
        numberCell(gap(row.gap), "gap"),
        statusCell(row.status),
        countsCell(row, metricCounts(ctx.metrics, row.metric)),
      ),
    );
  }
  table.append(tbody);
  clear(body, summary, h("div", { class: "table-wrap" }, table));
}

function button(
  text: string,
  cls: string,
  onClick: () => void,
  label: string | null = null,
  tip: string | null = null,
): HTMLButtonElement {
  const el = h("button", { type: "button", class: cls, "aria-label": label, title: tip }, text);
  el.addEventListener("click", onClick);
  return el;
}

/** Highest share first; units without data last; then by name. */
export function sortBreakdown(rows: BreakdownRow[]): BreakdownRow[] {
  return [...rows].sort(
    (a, b) => (b.actual ?? -1) - (a.actual ?? -1) || a.name.localeCompare(b.name, "vi"),
  );
}

export function renderBreakdown(
  section: HTMLElement,
  loaded: Loaded<Breakdown>,
  ctx: { metrics: Map<string, Metric>; unit: Unit | null; year: number; metric: string | null },
  onDrill: (row: BreakdownRow) => void,
): void {
  const body = section.querySelector(".body")!;
  const chartBox = section.querySelector<HTMLElement>(".chart")!;
  const canvas = chartBox.querySelector("canvas")!;
  const ready = frame(section, body, loaded);
  chartBox.hidden = !ready || !loaded.data.items.length;
  if (!ready) return;
  const rows = sortBreakdown(loaded.data.items);
  const title = ctx.metric ? metricTitle(ctx.metrics, ctx.metric) : "";
  if (!rows.length) {
    clear(body, h("p", { class: "note" }, t("noChildren")));
    return;
  }
  canvas.setAttribute("aria-label", t("chartBreakdownLabel", { metric: title }));
  breakdownChart(canvas, rows, onDrill);
  const tbody = h("tbody");
  for (const row of rows) {
    tbody.append(
      h(
        "tr",
        { "data-unit": row.org_unit_id },
        h("th", { scope: "row", "data-col": "name" }, button(row.name, "link drill", () => onDrill(row))),
        h("td", { "data-col": "kind" }, kindName(row.kind)),
        numberCell(pct(row.actual), "actual"),
        targetCell(row),
        numberCell(gap(row.gap), "gap"),
        statusCell(row.status),
        countsCell(row, metricCounts(ctx.metrics, row.metric)),
      ),
    );
  }
  clear(
    body,
    h("p", { class: "hint no-print" }, t("drillHint")),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data", id: "breakdown-table" },
        h("caption", {}, t("breakdownCaption", { metric: title, unit: ctx.unit?.name ?? "", year: ctx.year })),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, t("child")),
            h("th", { scope: "col" }, t("kind")),
            h("th", { scope: "col", class: "num" }, t("actual")),
            h("th", { scope: "col", class: "num" }, t("target")),
            h("th", { scope: "col", class: "num" }, t("gap")),
            h("th", { scope: "col" }, t("status")),
            h("th", { scope: "col", class: "num" }, t("counts")),
          ),
        ),
        tbody,
      ),
    ),
  );
}

export function renderTrend(
  section: HTMLElement,
  loaded: Loaded<Trend>,
  ctx: { metrics: Map<string, Metric>; unit: Unit | null; metric: string | null },
): void {
  const body = section.querySelector(".body")!;
  const chartBox = section.querySelector<HTMLElement>(".chart")!;
  const canvas = chartBox.querySelector("canvas")!;
  const ready = frame(section, body, loaded);
  chartBox.hidden = !ready;
  if (!ready) return;
  const { items, from_year, to_year } = loaded.data;
  const title = ctx.metric ? metricTitle(ctx.metrics, ctx.metric) : "";
  canvas.setAttribute("aria-label", t("chartTrendLabel", { metric: title }));
  trendChart(canvas, items);
  const tbody = h("tbody");
  for (const row of items) {
    tbody.append(
      h(
        "tr",
        { "data-year": row.year },
        h("th", { scope: "row" }, String(row.year)),
        numberCell(pct(row.actual), "actual"),
        numberCell(pct(row.target), "target"),
        statusCell(row.status),
        countsCell({ ...row, metric: ctx.metric ?? "" }, ""),
      ),
    );
  }
  clear(
    body,
    h(
      "details",
      { class: "trend-details" },
      h("summary", {}, t("trendCaption", { metric: title, unit: ctx.unit?.name ?? "", from: from_year, to: to_year })),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data", id: "trend-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, t("year")),
              h("th", { scope: "col", class: "num" }, t("actual")),
              h("th", { scope: "col", class: "num" }, t("target")),
              h("th", { scope: "col" }, t("status")),
              h("th", { scope: "col", class: "num" }, t("counts")),
            ),
          ),
          tbody,
        ),
      ),
    ),
  );
}

export function renderCompleteness(box: HTMLElement, loaded: Loaded<Completeness>, year: number): void {
  const heading = h("h3", {}, t("completeness", { year }));
  const body = h("div");
  const ready = frame(box, body, loaded);
  clear(box, heading, body);
  if (!ready) return;
  const data = loaded.data;
  if (!data.items.length) {
    body.append(h("p", { class: "note" }, t("noCompleteness")));
    return;
  }
  const facts = [t("onTime", { pct: pct(data.on_time_pct) })];
  if (data.expected !== undefined && data.submitted !== undefined) {
    facts.unshift(t("submittedCount", { submitted: num(data.submitted), expected: num(data.expected) }));
  }
  const tbody = h("tbody");
  for (const row of data.items) {
    tbody.append(
      h(
        "tr",
        { "data-unit": row.org_unit_id },
        h("th", { scope: "row" }, row.name),
        statusCell(row.status),
        h("td", {}, day(row.submitted_at)),
        h("td", {}, day(row.due_on)),
        h("td", {}, row.late ? lateBadge() : t("no")),
        h("td", {}, row.changed_since_submission ? t("yes") : t("no")),
      ),
    );
  }
  body.append(
    h("p", { class: "summary" }, facts.join(" · ")),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data", id: "completeness-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, t("child")),
            h("th", { scope: "col" }, t("status")),
            h("th", { scope: "col" }, t("submittedAt")),
            h("th", { scope: "col" }, t("dueOn")),
            h("th", { scope: "col" }, t("late")),
            h("th", { scope: "col" }, t("changed")),
          ),
        ),
        tbody,
      ),
    ),
  );
}

function lateBadge(): HTMLElement {
  return h("span", { class: "status status-behind" }, h("span", { "aria-hidden": "true" }, "⏰"), ` ${t("yes")}`);
}

function alertText(alert: Alert, metrics: Map<string, Metric>): string {
  const d = alert.details ?? {};
  if (alert.kind === "behind_trajectory") {
    return t("alertTrajectory", {
      metric: alert.metric ? metricTitle(metrics, alert.metric) : "",
      actual: pct(alert.actual),
      expected: pct(alert.expected),
    });
  }
  if (alert.kind === "report_overdue") {
    const status = typeof d.status === "string" ? t(d.status as "submitted") : "";
    return t("alertOverdue", { due: day(d.due_on as string), days: num(d.days_late as number), status });
  }
  if (alert.kind === "review_waiting") {
    return t("alertWaiting", { count: num(d.count as number), oldest: day(d.oldest_submitted_on as string) });
  }
  return JSON.stringify(d);
}

export function renderAlerts(box: HTMLElement, loaded: Loaded<Alerts>, metrics: Map<string, Metric>): void {
  const heading = h("h3", {}, t("alerts"));
  const body = h("div");
  const ready = frame(box, body, loaded);
  clear(box, heading, body);
  if (!ready) return;
  if (!loaded.data.items.length) {
    body.append(h("p", { class: "note" }, h("span", { "aria-hidden": "true" }, "✔ "), t("noAlerts")));
    return;
  }
  const list = h("ul", { class: "alerts", id: "alerts-list" });
  for (const alert of loaded.data.items) {
    list.append(
      h(
        "li",
        { "data-kind": alert.kind },
        h("span", { class: "alert-kind" }, statusBadge(alert.kind)),
        h("strong", {}, alert.name ?? `#${alert.org_unit_id}`),
        h("span", {}, ` — ${alertText(alert, metrics)}`),
        alert.since ? h("span", { class: "small" }, ` (${t("since")} ${day(alert.since)})`) : null,
      ),
    );
  }
  body.append(list);
}
