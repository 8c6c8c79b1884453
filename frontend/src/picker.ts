// The unit picker: a combobox over the units the caller may see, searched by name or code, as the tree
// stood at the end of the chosen year (GET /org-units?q=&as_of=). Empty, it lists the caller's own units.

import { getJson, query, type Page, type Unit } from "./api";
import { clear, h } from "./dom";
import { day } from "./format";
import { kindName, t } from "./i18n";
import { errorMessage } from "./render";

export interface PickerOptions {
  input: HTMLInputElement;
  list: HTMLElement;
  asOf: () => string | null;
  onPick: (unit: Unit) => void;
}

export function unitPicker({ input, list, asOf, onPick }: PickerOptions): void {
  let units: Unit[] = [];
  let active = -1;
  let timer: number | undefined;
  let asked = 0;

  const close = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };

  const highlight = (index: number) => {
    active = index;
    list.querySelectorAll<HTMLElement>("[role=option]").forEach((option, i) => {
      option.setAttribute("aria-selected", String(i === index));
      if (i === index) {
        input.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({ block: "nearest" });
      }
    });
  };

  const pick = (unit: Unit) => {
    close();
    input.value = "";
    onPick(unit);
  };

  const show = (items: Unit[], heading: string | null) => {
    units = items;
    list.removeAttribute("aria-busy");
    clear(list);
    if (heading) list.append(h("div", { class: "results-heading", role: "presentation" }, heading));
    if (!items.length) list.append(h("div", { class: "results-empty", role: "presentation" }, t("noUnits")));
    items.forEach((unit, i) => {
      const meta = [kindName(unit.kind), unit.code, unit.valid_to ? t("ended", { date: day(unit.valid_to) }) : null]
        .filter(Boolean)
        .join(" · ");
      const option = h(
        "div",
        { role: "option", id: `unit-option-${unit.id}`, "aria-selected": "false", "data-unit": unit.id },
        h("span", { class: "option-name" }, unit.name),
        h("span", { class: "option-meta" }, meta),
      );
      option.addEventListener("mousedown", (event) => event.preventDefault()); // keep focus in the input
      option.addEventListener("click", () => pick(units[i]));
      list.append(option);
    });
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    active = -1;
  };

  const search = async () => {
    const q = input.value.trim();
    const ticket = ++asked;
    try {
      const page = await getJson<Page<Unit>>(`/org-units${query({ q: q || null, as_of: asOf(), limit: 20 })}`);
      if (ticket === asked) show(page.items, q ? null : t("topUnits"));
    } catch (error) {
      if (ticket !== asked) return;
      clear(list, h("div", { class: "results-empty", role: "presentation" }, errorMessage(error)));
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }
  };

  input.addEventListener("input", () => {
    // The options on show answer the previous text: none may be chosen until the new answer is in.
    units = [];
    active = -1;
    input.removeAttribute("aria-activedescendant");
    list.setAttribute("aria-busy", "true");
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void search(), 200);
  });
  input.addEventListener("focus", () => void search());
  input.addEventListener("blur", () => window.setTimeout(close, 150));
  input.addEventListener("keydown", (event) => {
    const count = units.length;
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (list.hidden) void search();
      else if (count) highlight((active + 1) % count);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      if (count) highlight((active - 1 + count) % count);
    } else if (event.key === "Enter") {
      event.preventDefault(); // the controls form is never submitted
      const unit = units[active >= 0 ? active : 0];
      if (!list.hidden && unit) pick(unit);
    } else if (event.key === "Escape") {
      close();
    }
  });
}
