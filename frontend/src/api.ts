// The public API, as any client uses it: an OAuth 2 password login, the refresh token rotated in the
// background before the access token expires, logout revoking the refresh token. The page never decides
// what a user may see: it asks, and shows what the API answers (403 and 404 included).

import { lang } from "./i18n";

// Relative to the page (/dashboard/ → /api/v1), so the page also works behind a proxy's path prefix.
export const API = new URL("../api/v1", location.href).pathname;
const STORE = "cdht.dashboard.session";
// Refresh this long before the access token expires; a request finding less than MIN_LEFT refreshes first.
const REFRESH_AHEAD_MS = 60_000;
const MIN_LEFT_MS = 20_000;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Session {
  access: string;
  refresh: string;
  expiresAt: number; // ms since the epoch
}

let session: Session | null = load();
let refreshing: Promise<void> | null = null;
let timer: number | undefined;
let ended: (reason: "expired") => void = () => undefined;

function load(): Session | null {
  try {
    const raw = sessionStorage.getItem(STORE);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function save(value: Session | null): void {
  session = value;
  // Per tab: closing the tab forgets the login; a reload keeps it.
  if (value) sessionStorage.setItem(STORE, JSON.stringify(value));
  else sessionStorage.removeItem(STORE);
  window.clearTimeout(timer);
  if (value) {
    const wait = Math.max(5_000, value.expiresAt - Date.now() - REFRESH_AHEAD_MS);
    timer = window.setTimeout(() => void refresh().catch(() => undefined), wait);
  }
}

export function hasSession(): boolean {
  return session !== null;
}

/** Called once when the session ends on its own (refresh token refused): the page shows the login. */
export function onSessionEnded(callback: (reason: "expired") => void): void {
  ended = callback;
}

/** Re-arm the background refresh of a session restored from the tab's storage. */
export function resume(): void {
  if (session) save(session);
}

async function toError(response: Response): Promise<ApiError> {
  let code = "http_error";
  let message = response.statusText;
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(response.status, code, message);
}

async function grant(form: Record<string, string>): Promise<Session> {
  const response = await fetch(`${API}/auth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "Accept-Language": lang() },
    body: new URLSearchParams(form),
  });
  if (!response.ok) throw await toError(response);
  const body = (await response.json()) as { access_token: string; refresh_token: string; expires_in: number };
  return {
    access: body.access_token,
    refresh: body.refresh_token,
    expiresAt: Date.now() + body.expires_in * 1000,
  };
}

export async function login(username: string, password: string): Promise<void> {
  save(await grant({ grant_type: "password", username, password }));
}

/** Rotate the refresh token; concurrent callers share one rotation (reusing a rotated refresh token
 * would revoke the whole login). */
export function refresh(): Promise<void> {
  const current = session;
  if (!current) return Promise.reject(new ApiError(401, "not_authenticated", "No session."));
  if (!refreshing) {
    refreshing = grant({ grant_type: "refresh_token", refresh_token: current.refresh })
      .then(save, (error: unknown) => {
        if (error instanceof ApiError && error.status < 500) {
          save(null);
          ended("expired");
        }
        throw error;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/** Revoke the refresh token (and so the whole login) and forget the session. */
export async function logout(): Promise<void> {
  const current = session;
  save(null);
  if (!current) return;
  try {
    await fetch(`${API}/auth/revoke`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: current.refresh }),
    });
  } catch {
    // offline: the session is forgotten here, and the refresh token expires on its own
  }
}

async function send(path: string): Promise<Response> {
  if (session && session.expiresAt - Date.now() < MIN_LEFT_MS) await refresh();
  if (!session) throw new ApiError(401, "not_authenticated", "No session.");
  return fetch(API + path, {
    headers: { Authorization: `Bearer ${session.access}`, "Accept-Language": lang() },
  });
}

/** GET an API path with the bearer token; one refresh and retry on a 401; an ApiError otherwise. */
export async function get(path: string): Promise<Response> {
  let response: Response;
  try {
    response = await send(path);
    if (response.status === 401 && session) {
      await refresh();
      response = await send(path);
    }
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(0, "network", String(error));
  }
  if (!response.ok) throw await toError(response);
  return response;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await get(path)).json() as Promise<T>;
}

export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// What the dashboard reads (only the fields it uses).

export interface Me {
  user: { id: number; username: string; full_name: string };
  roles: { role: string; org_unit_id: number | null }[];
}

export interface Unit {
  id: number;
  name: string;
  kind: string;
  parent_id: number | null;
  code: string | null;
  valid_to: string | null;
  partial?: boolean; // known from a breakdown row only: read in full when shown
}

export interface Page<T> {
  items: T[];
  total: number;
}

export interface Metric {
  code: string;
  title: string;
  title_vi?: string;
  numerator: string;
  numerator_vi?: string;
  denominator: string;
  denominator_vi?: string;
}

export interface MetricRow {
  metric: string;
  numerator: number;
  denominator: number;
  actual: number | null;
  target: number | null;
  target_year: number | null;
  gap: number | null;
  status: "met" | "behind" | "no_target" | "no_data";
}

export interface Progress {
  org_unit_id: number;
  year: number;
  metrics: MetricRow[];
}

export interface BreakdownRow extends MetricRow {
  org_unit_id: number;
  name: string;
  kind: string;
}

export interface Breakdown {
  items: BreakdownRow[];
}

export interface TrendRow extends Omit<MetricRow, "metric"> {
  year: number;
}

export interface Trend {
  from_year: number;
  to_year: number;
  items: TrendRow[];
}

export interface CompletenessRow {
  org_unit_id: number;
  name: string;
  code: string | null;
  status: string;
  submitted_at: string | null;
  due_on: string | null;
  late: boolean;
  changed_since_submission: boolean;
}

export interface Completeness {
  items: CompletenessRow[];
  expected?: number;
  submitted?: number;
  on_time_pct: number | null;
}

export interface Alert {
  kind: string;
  org_unit_id: number;
  name?: string;
  metric?: string | null;
  actual?: number | null;
  expected?: number | null;
  since?: string | null;
  details?: Record<string, unknown> | null;
}

export interface Alerts {
  items: Alert[];
  total: number;
}
