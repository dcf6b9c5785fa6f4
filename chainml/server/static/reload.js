// A page showing what was computed before the registry's latest writes asks again after
// a moment, until the server has the current one (it waits for it a second each time).
"use strict";
const stale = document.querySelector("[data-reload-after]");
if (stale) {
  setTimeout(() => window.location.reload(), Number(stale.dataset.reloadAfter) || 1500);
}
