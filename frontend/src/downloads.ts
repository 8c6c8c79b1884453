// Downloads: the annual report (XLSX, CSV), the evaluations export and the completeness sheet of the unit
// and year on screen. Every button is offered; the API says who may have which file (a viewer gets the
// report but a 403 for the person-level export), and the page shows its answer beside the button.

import { get } from "./api";
import { t, type Key } from "./i18n";
import { errorMessage } from "./render";

interface Target {
  unit: number | null;
  year: number;
}

const FILES: Record<string, { path: string; format?: string; label: Key }> = {
  "annual-xlsx": { path: "/reports/annual", format: "xlsx", label: "annualXlsx" },
  "annual-csv": { path: "/reports/annual", format: "csv", label: "annualCsv" },
  "evaluations-csv": { path: "/exports/evaluations", label: "evaluationsCsv" },
  "completeness-xlsx": { path: "/reporting/completeness", format: "xlsx", label: "completenessXlsx" },
};

/** The file name the server gives in Content-Disposition (RFC 6266's filename* first). */
function filename(response: Response, fallback: string): string {
  const header = response.headers.get("Content-Disposition") ?? "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="?([^";]+)"?/i.exec(header);
  return plain ? plain[1] : fallback;
}

export function downloads(section: HTMLElement, current: () => Target): void {
  section.addEventListener("click", (event) => {
    const button = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-download]");
    if (!button) return;
    void download(button, current());
  });
}

async function download(button: HTMLButtonElement, target: Target): Promise<void> {
  const file = FILES[button.dataset.download ?? ""];
  const status = button.parentElement?.querySelector<HTMLElement>(".download-status");
  if (!file || !target.unit || !status) return;
  const params = new URLSearchParams({ org_unit_id: String(target.unit), year: String(target.year) });
  if (file.format) params.set("format", file.format);
  button.disabled = true;
  status.className = "download-status";
  status.textContent = t("downloading");
  try {
    const response = await get(`${file.path}?${params}`);
    const name = filename(response, `${button.dataset.download}-${target.unit}-${target.year}`);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
    status.textContent = t("downloaded", { file: name });
  } catch (error) {
    status.className = "download-status refused";
    status.textContent = errorMessage(error);
  } finally {
    button.disabled = false;
  }
}
