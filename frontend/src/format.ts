// Numbers, dates and statuses as people read them. Written by hand rather than with Intl so that the
// same number reads the same in every browser (and the browser tests can predict it).

import { lang, t, type Key } from "./i18n";

function group(digits: string, sep: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, sep);
}

/** A number with at most two decimals, without trailing zeros: 55,77 / 1.234 (vi), 55.77 / 1,234 (en). */
export function num(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const [thousands, decimal] = lang() === "vi" ? [".", ","] : [",", "."];
  const negative = value < 0;
  const fixed = Math.abs(value).toFixed(2).replace(/\.?0+$/, "");
  const [whole, fraction] = fixed.split(".");
  const text = group(whole, thousands) + (fraction ? decimal + fraction : "");
  return negative && text !== "0" ? `−${text}` : text;
}

export function pct(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${num(value)} %`;
}

/** A gap in percentage points, signed: +25,91 / −1,67. */
export function gap(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  return value > 0 ? `+${num(value)}` : num(value);
}

/** YYYY-MM-DD (or an ISO timestamp) as dd/mm/yyyy (vi) or yyyy-mm-dd (en). */
export function day(value: string | null | undefined): string {
  if (!value) return "—";
  const [y, m, d] = value.slice(0, 10).split("-");
  return lang() === "vi" ? `${d}/${m}/${y}` : `${y}-${m}-${d}`;
}

// Every status has an icon and a word as well as a colour: colour alone says nothing to a colour-blind
// reader or on a black-and-white printout.
const ICONS: Record<string, string> = {
  met: "✔",
  behind: "▼",
  no_target: "–",
  no_data: "○",
  not_submitted: "✖",
  submitted: "●",
  accepted: "✔",
  returned: "↩",
  behind_trajectory: "▼",
  report_overdue: "⏰",
  review_waiting: "⌛",
};

/** `<span class="status status-met"><span aria-hidden>✔</span> Đạt</span>` */
export function statusBadge(status: string): HTMLElement {
  const badge = document.createElement("span");
  badge.className = `status status-${status}`;
  const icon = document.createElement("span");
  icon.className = "status-icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = ICONS[status] ?? "•";
  badge.append(icon, ` ${t(status as Key)}`);
  badge.dataset.status = status;
  return badge;
}
