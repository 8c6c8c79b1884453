// The dashboard: log in, pick a unit and a year, read the aggregates. The address (#unit=&year=&metric=
// &basis=) holds the view, so the back button walks back up a drill-down and a view can be bookmarked.

import * as api from "./api";
import type { Alerts, Breakdown, BreakdownRow, Completeness, Me, Metric, Progress, Trend, Unit } from "./api";
import { resizeAll } from "./charts";
import { byId, clear, h } from "./dom";
import { downloads } from "./downloads";
import { day } from "./format";
import { kindName, lang, setLang, t, translateStatic, type Lang } from "./i18n";
import { unitPicker } from "./picker";
import {
  metricTitle,
  renderAlerts,
  renderBreakdown,
  renderCompleteness,
  renderProgress,
  renderTrend,
  type Loaded,
} from "./render";

const LANG_STORE = "cdht.dashboard.lang";
const FIRST_YEAR = 2021; // Decision 677/QĐ-TTg: the programme runs 2021–2030
const LAST_PLAN_YEAR = 2030;
const THIS_YEAR = new Date().getFullYear();

type Basis = "as_was" | "lineage";

interface View {
  unit: number | null;
  year: number;
  metric: string | null;
  basis: Basis;
}

const data = {
  me: null as Me | null,
  metrics: new Map<string, Metric>(),
  units: new Map<number, Unit>(),
  // Ancestors of a unit reached by drilling down: the path taken, in that year's tree.
  trails: new Map<number, Unit[]>(),
  crumbs: [] as Unit[],
  progress: { state: "idle" } as Loaded<Progress>,
  breakdown: { state: "idle" } as Loaded<Breakdown>,
  trend: { state: "idle" } as Loaded<Trend>,
  completeness: { state: "idle" } as Loaded<Completeness>,
  alerts: { state: "idle" } as Loaded<Alerts>,
};
let view: View = readHash();
let generation = 0; // answers to an older view are dropped
let firstViewMarked = false;

// ---- the address -------------------------------------------------------------------------------------

/** The most recent complete year by default: the current one is still being evaluated until December. */
function defaultYear(): number {
  return THIS_YEAR - 1;
}

function readHash(): View {
  const params = new URLSearchParams(location.hash.slice(1));
  const unit = Number(params.get("unit"));
  const year = Number(params.get("year"));
  return {
    unit: Number.isInteger(unit) && unit > 0 ? unit : null,
    year: Number.isInteger(year) && year >= 2000 && year <= 2100 ? year : defaultYear(),
    metric: params.get("metric"),
    basis: params.get("basis") === "lineage" ? "lineage" : "as_was",
  };
}

function go(next: Partial<View>, replace = false): void {
  const merged = { ...view, ...next };
  const params = new URLSearchParams();
  if (merged.unit) params.set("unit", String(merged.unit));
  params.set("year", String(merged.year));
  if (merged.metric) params.set("metric", merged.metric);
  if (merged.basis !== "as_was") params.set("basis", merged.basis);
  const hash = `#${params}`;
  if (hash === location.hash) return;
  if (replace) {
    history.replaceState(null, "", hash);
    void show(readHash());
  } else {
    location.hash = hash; // hashchange → show()
  }
}

/** The tree as it stood at the end of the chosen year (today for the current year). */
function asOf(year: number): string | null {
  return year >= THIS_YEAR ? null : `${year}-12-31`;
}

// ---- sign-in and sign-out ----------------------------------------------------------------------------

function showLogin(message = ""): void {
  document.body.dataset.view = "login";
  byId("login-view").hidden = false;
  byId("dash-view").hidden = true;
  for (const id of ["who", "logout", "print"]) byId(id).hidden = true;
  byId("login-message").textContent = message;
  byId<HTMLInputElement>("username").focus();
}

async function signIn(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  const username = byId<HTMLInputElement>("username").value.trim();
  const password = byId<HTMLInputElement>("password").value;
  const message = byId("login-message");
  const submit = byId<HTMLButtonElement>("sign-in");
  if (!username || !password) {
    message.textContent = t("loginFailed");
    return;
  }
  submit.disabled = true;
  message.textContent = t("signingIn");
  try {
    await api.login(username, password);
    form.reset();
    message.textContent = "";
    await enter();
  } catch (error) {
    const status = error instanceof api.ApiError ? error.status : 0;
    message.textContent =
      status === 400 || status === 401 ? t("loginFailed") : status === 429 ? t("loginLocked") : t("offline");
  } finally {
    submit.disabled = false;
  }
}

async function signOut(): Promise<void> {
  await api.logout();
  generation++;
  // The next login starts from its own top unit: nothing of this one's view or data is kept.
  history.replaceState(null, "", location.pathname);
  view = readHash();
  data.me = null;
  data.units.clear();
  data.trails.clear();
  data.crumbs = [];
  delete document.body.dataset.loaded;
  for (const key of ["progress", "breakdown", "trend", "completeness", "alerts"] as const) {
    data[key] = { state: "idle" };
  }
  showLogin(t("loggedOut"));
}

// ---- the dashboard -------------------------------------------------------------------------------------

async function enter(): Promise<void> {
  document.body.dataset.view = "dashboard";
  byId("login-view").hidden = true;
  byId("dash-view").hidden = false;
  byId("logout").hidden = false;
  byId("print").hidden = false;
  const [me, metrics] = await Promise.all([
    api.getJson<Me>("/me").catch(() => null),
    api.getJson<Metric[]>("/metrics").catch(() => [] as Metric[]),
  ]);
  if (!api.hasSession()) return; // the session ended while loading
  data.me = me;
  data.metrics = new Map(metrics.map((metric) => [metric.code, metric]));
  const who = byId("who");
  who.hidden = !me;
  if (me) who.textContent = `${t("signedInAs")} ${me.user.full_name || me.user.username}`;
  await show(readHash());
}

async function firstUnit(year: number): Promise<Unit | null> {
  const page = await api.getJson<api.Page<Unit>>(`/org-units${api.query({ as_of: asOf(year), limit: 1 })}`);
  return page.items[0] ?? null;
}

async function unitById(id: number): Promise<Unit> {
  const known = data.units.get(id);
  if (known && !known.partial) return known;
  const unit = await api.getJson<Unit>(`/org-units/${id}`);
  data.units.set(id, unit);
  return unit;
}

/** The path from the caller's top unit down to `unit`: the drill-down trail if there is one, else the
 * parents as far up as the caller may see (a 404 above their scope ends the walk). */
async function ancestors(unit: Unit): Promise<Unit[]> {
  const trail = data.trails.get(unit.id);
  if (trail) return trail;
  const chain: Unit[] = [];
  let parent = unit.parent_id;
  while (parent && chain.length < 12) {
    try {
      const up = await unitById(parent);
      chain.unshift(up);
      parent = up.parent_id;
    } catch {
      break;
    }
  }
  return chain;
}

async function show(next: View): Promise<void> {
  const ticket = ++generation;
  const changedUnit = next.unit !== view.unit || next.year !== view.year || next.basis !== view.basis;
  view = next;
  syncControls();
  if (!view.unit) {
    try {
      const top = await firstUnit(view.year);
      if (ticket !== generation) return;
      if (!top) {
        data.progress = { state: "error", error: new api.ApiError(404, "not_found", "") };
        renderAll();
        return;
      }
      data.units.set(top.id, top);
      go({ unit: top.id }, true);
    } catch (error) {
      data.progress = { state: "error", error };
      renderAll();
    }
    return;
  }
  const unitId = view.unit;
  const { year, basis } = view;
  const common = { org_unit_id: unitId, year };
  const keep = <T>(set: (value: Loaded<T>) => void) => ({
    ok: (value: T) => ticket === generation && (set({ state: "ready", data: value }), true),
    fail: (error: unknown) => ticket === generation && (set({ state: "error", error }), true),
  });

  if (changedUnit || data.progress.state !== "ready") {
    data.crumbs = data.trails.get(unitId) ?? [];
    data.progress = { state: "loading" };
    data.completeness = { state: "loading" };
    data.alerts = { state: "loading" };
  }
  data.breakdown = { state: "loading" };
  data.trend = { state: "loading" };
  renderAll();

  const unitLoad = unitById(unitId).catch(() => null);
  // The breadcrumb may walk up the tree a request at a time: it is drawn when it is ready.
  const crumbsLoad = unitLoad.then(async (unit) => {
    const crumbs = unit ? await ancestors(unit) : [];
    // Going back up a crumb keeps the rest of the same path.
    crumbs.forEach((crumb, i) => data.trails.set(crumb.id, crumbs.slice(0, i)));
    if (ticket !== generation) return false;
    data.crumbs = crumbs;
    return true;
  });
  const progress = changedUnit || data.progress.state !== "ready"
    ? api.getJson<Progress>(`/aggregates/progress${api.query({ ...common, basis })}`)
    : Promise.resolve((data.progress as { data: Progress }).data);

  // The first view: the unit's progress table. Everything else follows in parallel.
  const p = keep<Progress>((value) => (data.progress = value));
  await Promise.all([unitLoad, progress.then(p.ok, p.fail)]);
  if (ticket !== generation) return;
  if (!view.metric || !data.metrics.has(view.metric)) {
    const rows = data.progress.state === "ready" ? data.progress.data.metrics : [];
    const chosen = rows.find((row) => row.status === "behind" || row.status === "met") ?? rows[0];
    if (chosen) view = { ...view, metric: chosen.metric };
    if (view.metric) history.replaceState(null, "", hashOf(view));
  }
  renderAll();
  markFirstView();

  const metric = view.metric;
  const jobs: Promise<unknown>[] = [crumbsLoad];
  if (metric) {
    const b = keep<Breakdown>((value) => (data.breakdown = value));
    const tr = keep<Trend>((value) => (data.trend = value));
    jobs.push(
      api.getJson<Breakdown>(`/aggregates/breakdown${api.query({ ...common, metric, basis })}`).then(b.ok, b.fail),
      api
        .getJson<Trend>(
          `/aggregates/trend${api.query({
            org_unit_id: unitId,
            metric,
            basis,
            from_year: Math.min(FIRST_YEAR, year),
            to_year: Math.max(LAST_PLAN_YEAR, year),
          })}`,
        )
        .then(tr.ok, tr.fail),
    );
  } else {
    // No metric to show: the progress's refusal (if any) stands for the sections that depend on it.
    const progressNow = data.progress as Loaded<Progress>; // set by a callback: TypeScript cannot tell
    const stand: Loaded<never> = progressNow.state === "error" ? progressNow : { state: "idle" };
    data.breakdown = stand;
    data.trend = stand;
  }
  if (data.completeness.state === "loading") {
    const c = keep<Completeness>((value) => (data.completeness = value));
    const a = keep<Alerts>((value) => (data.alerts = value));
    jobs.push(
      api.getJson<Completeness>(`/reporting/completeness${api.query(common)}`).then(c.ok, c.fail),
      api.getJson<Alerts>(`/alerts${api.query({ ...common, limit: 100 })}`).then(a.ok, a.fail),
    );
  }
  // Draw each section as its answer arrives.
  await Promise.all(jobs.map((job) => job.then((fresh) => fresh && renderAll())));
  if (ticket === generation) document.body.dataset.loaded = hashOf(view);
}

function hashOf(v: View): string {
  const params = new URLSearchParams();
  if (v.unit) params.set("unit", String(v.unit));
  params.set("year", String(v.year));
  if (v.metric) params.set("metric", v.metric);
  if (v.basis !== "as_was") params.set("basis", v.basis);
  return `#${params}`;
}

function markFirstView(): void {
  if (firstViewMarked || data.progress.state === "idle" || data.progress.state === "loading") return;
  firstViewMarked = true;
  // Read by the browser test (and anyone with DevTools): time from navigation start to a usable first view.
  performance.mark("cdht:first-view");
  document.body.dataset.firstView = String(Math.round(performance.now()));
}

function drill(row: BreakdownRow): void {
  const here = view.unit ? data.units.get(view.unit) : undefined;
  const child: Unit = {
    id: row.org_unit_id,
    name: row.name,
    kind: row.kind,
    parent_id: view.unit,
    code: null,
    valid_to: null,
    partial: true,
  };
  if (!data.units.has(child.id)) data.units.set(child.id, child);
  if (here) data.trails.set(child.id, [...data.crumbs, here]);
  go({ unit: row.org_unit_id });
  byId("unit-title").focus({ preventScroll: false });
}

// ---- drawing -------------------------------------------------------------------------------------------

function syncControls(): void {
  const year = byId<HTMLSelectElement>("year");
  const last = Math.max(THIS_YEAR, view.year);
  if (year.options.length !== last - Math.min(FIRST_YEAR, view.year) + 1) {
    clear(year);
    for (let y = last; y >= Math.min(FIRST_YEAR, view.year); y--) year.append(h("option", { value: y }, String(y)));
  }
  year.value = String(view.year);
  byId<HTMLSelectElement>("basis").value = view.basis;
}

function renderMetricSelect(): void {
  const select = byId<HTMLSelectElement>("metric");
  const rows = data.progress.state === "ready" ? data.progress.data.metrics : [];
  clear(select);
  for (const row of rows) select.append(h("option", { value: row.metric }, metricTitle(data.metrics, row.metric)));
  select.disabled = !rows.length;
  if (view.metric) select.value = view.metric;
}

function renderHeading(): void {
  const unit = view.unit ? data.units.get(view.unit) : undefined;
  const title = byId("unit-title");
  title.setAttribute("tabindex", "-1");
  title.textContent = unit ? `${unit.name} — ${view.year}` : "";
  byId("unit-meta").textContent = unit
    ? [kindName(unit.kind), unit.code, unit.valid_to ? t("ended", { date: day(unit.valid_to) }) : null]
        .filter(Boolean)
        .join(" · ")
    : "";
  const list = byId("breadcrumb");
  clear(list);
  for (const crumb of data.crumbs) {
    const link = h("a", { href: hashOf({ ...view, unit: crumb.id }) }, crumb.name);
    list.append(h("li", {}, link));
  }
  if (unit) list.append(h("li", {}, h("span", { "aria-current": "page" }, unit.name)));
  document.title = unit ? `${unit.name} ${view.year} — ${t("appTitle")}` : t("appTitle");
  byId("downloads-hint").textContent = t("downloadsHint", { unit: unit?.name ?? "", year: view.year });
  const printed = new Date().toISOString().slice(0, 10);
  byId("print-footer").textContent = t("footer", { date: day(printed) });
}

function renderAll(): void {
  const unit = view.unit ? (data.units.get(view.unit) ?? null) : null;
  renderHeading();
  renderMetricSelect();
  renderProgress(
    byId("progress"),
    data.progress,
    { metrics: data.metrics, unit, year: view.year, selected: view.metric },
    (metric) => {
      go({ metric });
      byId("breakdown-title").scrollIntoView({ block: "start" });
    },
  );
  renderBreakdown(byId("breakdown"), data.breakdown, { metrics: data.metrics, unit, year: view.year, metric: view.metric }, drill);
  renderTrend(byId("trend"), data.trend, { metrics: data.metrics, unit, metric: view.metric });
  renderCompleteness(byId("completeness"), data.completeness, view.year);
  renderAlerts(byId("alerts"), data.alerts, data.metrics);
  const reporting = byId("reporting");
  reporting.dataset.state =
    data.completeness.state === "loading" || data.alerts.state === "loading" ? "loading" : "ready";
}

function applyLanguage(value: Lang): void {
  setLang(value);
  localStorage.setItem(LANG_STORE, value);
  const button = byId("lang");
  button.setAttribute("lang", value === "vi" ? "en" : "vi");
  translateStatic();
  button.textContent = t("switchLang");
  if (data.me) byId("who").textContent = `${t("signedInAs")} ${data.me.user.full_name || data.me.user.username}`;
  if (document.body.dataset.view === "dashboard") renderAll();
}

// ---- start -----------------------------------------------------------------------------------------------

function start(): void {
  const stored = localStorage.getItem(LANG_STORE);
  applyLanguage(stored === "en" ? "en" : "vi");

  byId("login-form").addEventListener("submit", (event) => void signIn(event as SubmitEvent));
  byId("logout").addEventListener("click", () => void signOut());
  byId("lang").addEventListener("click", () => applyLanguage(lang() === "vi" ? "en" : "vi"));
  byId("print").addEventListener("click", () => window.print());
  byId("controls").addEventListener("submit", (event) => event.preventDefault());
  byId<HTMLSelectElement>("year").addEventListener("change", (event) =>
    go({ year: Number((event.target as HTMLSelectElement).value) }),
  );
  byId<HTMLSelectElement>("basis").addEventListener("change", (event) =>
    go({ basis: (event.target as HTMLSelectElement).value as Basis }),
  );
  byId<HTMLSelectElement>("metric").addEventListener("change", (event) =>
    go({ metric: (event.target as HTMLSelectElement).value }),
  );
  unitPicker({
    input: byId<HTMLInputElement>("unit-search"),
    list: byId("unit-results"),
    asOf: () => asOf(view.year),
    onPick: (unit) => {
      data.units.set(unit.id, unit);
      data.trails.delete(unit.id);
      go({ unit: unit.id });
    },
  });
  downloads(byId("downloads"), () => view);
  window.addEventListener("hashchange", () => {
    if (document.body.dataset.view === "dashboard") void show(readHash());
  });
  // On paper the year-by-year table is opened and the charts are redrawn at the page's width.
  let closed: HTMLDetailsElement[] = [];
  window.addEventListener("beforeprint", () => {
    closed = [...document.querySelectorAll<HTMLDetailsElement>("details:not([open])")];
    for (const details of closed) details.open = true;
    resizeAll();
  });
  window.addEventListener("afterprint", () => {
    for (const details of closed) details.open = false;
    resizeAll();
  });
  api.onSessionEnded(() => showLogin(t("sessionEnded")));

  if (api.hasSession()) {
    api.resume();
    void enter();
  } else {
    showLogin();
  }
}

start();
