// durable dashboard: the little plain JavaScript the pages need (no build step).
// - relative times ("3s ago") kept fresh, the absolute time on hover
// - live regions ([data-pausable]) skip their poll while a form in them is open or focused
// - open <details> stay open when a live region is swapped
// - JSON editors ([data-json]) are checked as you type; their form cannot be sent invalid
// - the time-travel slider highlights its journal entry; clicking an entry's index moves it
// Nothing here builds HTML from data: it only sets textContent, classes and attributes.
(function () {
  "use strict";

  // ------------------------------------------------------------------ relative times
  function rel(iso) {
    const t = Date.parse(iso);
    if (isNaN(t)) return null;
    let s = (Date.now() - t) / 1000;
    const future = s < 0;
    s = Math.abs(s);
    let text;
    if (s < 1) return "just now";
    if (s < 60) text = Math.floor(s) + "s";
    else if (s < 3600) text = Math.floor(s / 60) + "m";
    else if (s < 86400) text = Math.floor(s / 3600) + "h";
    else text = Math.floor(s / 86400) + "d";
    return future ? "in " + text : text + " ago";
  }

  function refreshTimes(root) {
    (root || document).querySelectorAll("time.rel[datetime]").forEach(function (el) {
      const text = rel(el.getAttribute("datetime"));
      if (text !== null && el.textContent !== text) el.textContent = text;
      if (!el.dataset.local) {
        const d = new Date(el.getAttribute("datetime"));
        if (!isNaN(d)) {
          el.title = d.toLocaleString(undefined, { hour12: false }) + "." +
            String(d.getMilliseconds()).padStart(3, "0") + " (local)\n" + el.title;
          el.dataset.local = "1";
        }
      }
    });
  }

  // ------------------------------------------------------------------ JSON editors
  function checkJson(area) {
    const form = area.form;
    const status = form ? form.querySelector(".json-status") : null;
    const text = area.value.trim();
    let error = null;
    if (text === "") {
      if (!area.hasAttribute("data-optional")) error = "give a JSON value (null for none)";
    } else {
      try { JSON.parse(text); } catch (e) { error = e.message; }
    }
    area.classList.toggle("invalid", error !== null);
    area.setAttribute("aria-invalid", error !== null ? "true" : "false");
    if (form) {
      const bad = Array.prototype.some.call(
        form.querySelectorAll("textarea[data-json]"), function (a) { return a.classList.contains("invalid"); });
      form.querySelectorAll("[data-needs-json]").forEach(function (b) { b.disabled = bad; });
      if (status) {
        status.textContent = error ? "Not valid JSON: " + error : "";
        status.classList.toggle("ok", !error);
      }
    }
    return error === null;
  }

  function formJsonValid(form) {
    let ok = true;
    form.querySelectorAll("textarea[data-json]").forEach(function (a) { ok = checkJson(a) && ok; });
    return ok;
  }

  // ------------------------------------------------------------------ time travel
  function highlightEntry(n) {
    document.querySelectorAll("table.timeline tr[data-entry]").forEach(function (tr) {
      const i = Number(tr.dataset.entry);
      tr.classList.toggle("tt-current", i === n);
      tr.classList.toggle("tt-after", i > n);
    });
  }

  function sliderValue() {
    const s = document.getElementById("tt-slider");
    return s ? Number(s.value) : null;
  }

  function syncSlider() {
    const s = document.getElementById("tt-slider");
    const live = document.getElementById("inv-live");
    if (!s) return;
    if (live && live.dataset.journalLast) {
      const last = Number(live.dataset.journalLast);
      if (last > Number(s.max)) {
        const following = Number(s.value) === Number(s.max);
        s.max = String(last);
        const label = document.getElementById("tt-max");
        if (label) label.textContent = "entry " + last;
        if (following) { s.value = String(last); s.dispatchEvent(new Event("input", { bubbles: true })); }
      }
    }
    highlightEntry(Number(s.value));
  }

  // ------------------------------------------------------------------ live regions
  function busy(region) {
    if (region.querySelector("details[data-hold][open]")) return true;
    const a = document.activeElement;
    if (a && region.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) return true;
    const sel = window.getSelection && window.getSelection();
    if (sel && !sel.isCollapsed && sel.anchorNode && region.contains(sel.anchorNode)) return true;
    return false;
  }

  let openDetails = [];

  document.addEventListener("htmx:beforeRequest", function (evt) {
    const elt = evt.detail.elt;
    // a poll of a live region waits while someone works in it
    if (elt && elt.hasAttribute && elt.hasAttribute("data-pausable") &&
        evt.detail.requestConfig && evt.detail.requestConfig.verb === "get" && busy(elt)) {
      evt.preventDefault();
      return;
    }
    // a form with a JSON editor is not sent while its JSON is invalid
    const form = elt && elt.closest ? elt.closest("form") : null;
    if (form && form.querySelector("textarea[data-json]") && !formJsonValid(form)) {
      evt.preventDefault();
    }
  });

  document.addEventListener("htmx:beforeSwap", function (evt) {
    const target = evt.detail.target;
    openDetails = [];
    if (target && target.querySelectorAll) {
      target.querySelectorAll("details[open][id]").forEach(function (d) { openDetails.push(d.id); });
    }
  });

  document.addEventListener("htmx:afterSettle", function (evt) {
    const isGet = evt.detail.requestConfig && evt.detail.requestConfig.verb === "get";
    if (isGet) {
      openDetails.forEach(function (id) {
        const d = document.getElementById(id);
        if (d && !d.hasAttribute("data-hold")) d.open = true;
      });
    }
    openDetails = [];
    const root = evt.detail.elt || document;
    refreshTimes(document);
    (root.querySelectorAll ? root : document).querySelectorAll("textarea[data-json]").forEach(checkJson);
    syncSlider();
  });

  // ------------------------------------------------------------------ plain events
  document.addEventListener("input", function (evt) {
    const t = evt.target;
    if (t.matches && t.matches("textarea[data-json]")) checkJson(t);
    if (t.id === "tt-slider") highlightEntry(Number(t.value));
  });

  document.addEventListener("submit", function (evt) {
    const form = evt.target;
    if (form.querySelector && form.querySelector("textarea[data-json]") && !formJsonValid(form)) {
      evt.preventDefault();
    }
  });

  document.addEventListener("click", function (evt) {
    const t = evt.target;
    const close = t.closest && t.closest("[data-close]");
    if (close) {
      const target = document.querySelector(close.getAttribute("data-close"));
      if (target) target.replaceChildren();
      return;
    }
    const copy = t.closest && t.closest("[data-copy]");
    if (copy && navigator.clipboard) {
      navigator.clipboard.writeText(copy.getAttribute("data-copy")).then(function () {
        const old = copy.textContent;
        copy.textContent = "copied";
        setTimeout(function () { copy.textContent = old; }, 1200);
      });
      return;
    }
    const idx = t.closest && t.closest("table.timeline td.idx");
    if (idx) {
      const s = document.getElementById("tt-slider");
      if (s) {
        s.value = idx.parentElement.dataset.entry;
        s.dispatchEvent(new Event("input", { bubbles: true }));
      }
    }
  });

  // ------------------------------------------------------------------ popovers
  // <details> whose body is a .pop: one open at a time; Escape or a click outside closes it
  function popovers() { return document.querySelectorAll("details[open] > .pop"); }

  document.addEventListener("toggle", function (evt) {
    const d = evt.target;
    if (!d.open || !d.querySelector(":scope > .pop")) return;
    popovers().forEach(function (p) {
      const other = p.parentElement;
      if (other !== d && !other.contains(d)) other.open = false;
    });
  }, true);

  document.addEventListener("pointerdown", function (evt) {
    popovers().forEach(function (p) {
      const d = p.parentElement;
      if (!d.contains(evt.target)) d.open = false;
    });
  });

  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Escape") popovers().forEach(function (p) { p.parentElement.open = false; });
  });

  document.addEventListener("keydown", function (evt) {
    // Ctrl/Cmd+Enter sends the form of a textarea (the SQL page)
    if ((evt.ctrlKey || evt.metaKey) && evt.key === "Enter" && evt.target.tagName === "TEXTAREA" && evt.target.form) {
      evt.preventDefault();
      evt.target.form.requestSubmit();
    }
  });

  function start() {
    refreshTimes(document);
    document.querySelectorAll("textarea[data-json]").forEach(checkJson);
    syncSlider();
    setInterval(function () { refreshTimes(document); }, 5000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  window.durableDashboard = { sliderValue: sliderValue };
})();
