/* <store-availability sku="SKU-0001" api="https://availability.example"> — store-availability widget.
 * No dependencies. Shows the nearest store's promise only when the API backs it:
 * an HTTP error, a timeout, or data older than max-data-age shows no badge at all.
 * Attributes: sku (required), api (base URL; default: this page's origin),
 * postal-code (prefill and look up at once), radius-km (25), timeout-ms (3000),
 * max-data-age (seconds, 21600), qty (units wanted, 1). Theme with --sa-* custom properties or ::part().
 */
(() => {
  "use strict";
  const PROMISES = { in_stock: "In stock", low_stock: "Only a few left" };
  const CSS = `
:host{display:block;font:var(--sa-font,inherit);color:var(--sa-color,inherit)}
form{display:flex;flex-wrap:wrap;gap:.4em;align-items:center}
input{font:inherit;padding:.3em .5em;width:8em;border:1px solid var(--sa-border-color,#888);border-radius:var(--sa-radius,4px)}
button{font:inherit;padding:.3em .7em;cursor:pointer;border:1px solid var(--sa-accent,#1f5fbf);border-radius:var(--sa-radius,4px);background:var(--sa-button-bg,#fff);color:var(--sa-accent,#1f5fbf)}
[part=badge]{margin:.5em 0 0;min-height:1.4em}
[part=badge][data-kind=promise]{color:var(--sa-promise-color,#17692c);font-weight:var(--sa-promise-weight,600)}
[part=badge][data-kind=promise]::before{content:"\\2713\\00a0"}
[part=badge][data-kind=none],[part=badge][data-kind=info]{color:var(--sa-muted-color,#555)}`;

  const km = (d) => (d < 10 ? d.toFixed(1) : Math.round(d)) + " km";
  const time = (s) => (s ? Date.parse(s) : NaN);

  class StoreAvailability extends HTMLElement {
    static get observedAttributes() {
      return ["sku", "api"];
    }

    constructor() {
      super();
      this._seq = 0;
      this._where = null;
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML =
        `<style>${CSS}</style><form part="form"><label part="label" for="pc">Postal code</label>` +
        `<input id="pc" part="input" name="postal_code" autocomplete="postal-code" inputmode="text" maxlength="16" required>` +
        `<button part="button" type="submit">Check stores</button>` +
        `<button part="button" type="button" id="geo" hidden>Use my location</button></form>` +
        `<p part="badge" role="status" aria-live="polite" aria-atomic="true"></p>`;
      this._badge = root.querySelector("[part=badge]");
      this._input = root.querySelector("input");
      const geo = root.querySelector("#geo");
      root.querySelector("form").addEventListener("submit", (e) => {
        e.preventDefault();
        const pc = this._input.value.trim();
        if (pc) this._lookup({ postal_code: pc });
      });
      if (navigator.geolocation) {
        geo.hidden = false;
        geo.addEventListener("click", () => this._locate());
      }
    }

    connectedCallback() {
      const pc = (this.getAttribute("postal-code") || "").trim();
      if (pc) {
        this._input.value = pc;
        this._lookup({ postal_code: pc });
      } else if (navigator.permissions && navigator.geolocation) {
        // Use the browser's position only when the shopper already granted it.
        navigator.permissions.query({ name: "geolocation" }).then(
          (p) => p.state === "granted" && !this._where && this._locate(),
          () => {}
        );
      }
    }

    attributeChangedCallback(name, old, value) {
      if (old !== null && old !== value && this._where) this._lookup(this._where);
    }

    _num(name, fallback) {
      const v = Number(this.getAttribute(name));
      return this.hasAttribute(name) && Number.isFinite(v) && v > 0 ? v : fallback;
    }

    _show(kind, text) {
      this.dataset.state = kind;
      this._badge.dataset.kind = kind;
      this._badge.textContent = text;
    }

    _locate() {
      this._show("loading", "Finding your location\u2026");
      navigator.geolocation.getCurrentPosition(
        (pos) => this._lookup({ lat: pos.coords.latitude, lon: pos.coords.longitude }),
        () => this._show("info", "Location not available: enter a postal code."),
        { timeout: 10000, maximumAge: 600000 }
      );
    }

    async _lookup(where) {
      const sku = this.getAttribute("sku");
      if (!sku) return;
      this._where = where;
      const seq = ++this._seq;
      if (this._abort) this._abort.abort();
      const abort = (this._abort = new AbortController());
      const timer = setTimeout(() => abort.abort(), this._num("timeout-ms", 3000));
      this._show("loading", "Checking nearby stores\u2026");
      let shown = ["error", ""];
      try {
        const base = (this.getAttribute("api") || location.origin).replace(/\/+$/, "");
        const url = new URL(base + "/v1/availability/" + encodeURIComponent(sku));
        for (const [k, v] of Object.entries(where)) url.searchParams.set(k, String(v));
        url.searchParams.set("radius_km", String(this._num("radius-km", 25)));
        if (this.hasAttribute("qty")) url.searchParams.set("qty", String(this._num("qty", 1)));
        const r = await fetch(url, { signal: abort.signal, headers: { Accept: "application/json" } });
        const body = await r.json();
        if (r.ok) shown = this._answer(body);
        else if (r.status === 404 && /postal_code/.test(body.error || ""))
          shown = ["info", "No store found for that postal code."];
      } catch (e) {
        // HTTP failure, bad JSON, timeout or a newer lookup: never guess.
      } finally {
        clearTimeout(timer);
      }
      if (seq === this._seq) this._show(shown[0], shown[1]);
    }

    _answer(body) {
      const maxAge = this._num("max-data-age", 21600) * 1000;
      const generated = time(body.generated_at);
      // The answer itself must be recent (an old cached copy promises nothing).
      if (!(Math.abs(Date.now() - generated) <= maxAge)) return ["error", ""];
      for (const s of body.stores || []) {
        const words = PROMISES[s.state];
        const age = generated - time(s.as_of);
        if (s.promise === true && words && age >= -60000 && age <= maxAge) {
          return ["promise", `${words} at ${s.store.name}, ${km(s.store.distance_km)}`];
        }
      }
      return ["none", "Check nearby stores"];
    }
  }

  if (!customElements.get("store-availability")) {
    customElements.define("store-availability", StoreAvailability);
  }
})();
