// mlops-magics chart loader: the only JavaScript stored with each chart (about 3 kB).
//
// Vega, Vega-Lite, vega-embed and Altair's JupyterChart renderer (about 0.9 MB, bundled
// by vl-convert in the kernel) are asked of the kernel ONCE per browser page over one
// chart's comm, imported from a blob: URL and shared by every chart on the page. Nothing
// is fetched from a CDN, and the bundle never lands in the notebook's saved widget state.
const KEY = "__BUNDLE_KEY__";
const SLOW_MS = 10000;

function shared() {
  const cache = (globalThis.__mlopsMagicsVega ??= {});
  if (!cache[KEY]) {
    const entry = { asker: null, waiters: new Set(), settled: false, importing: false };
    entry.promise = new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    entry.promise.then(
      () => { entry.settled = true; entry.waiters.clear(); },
      () => { entry.waiters.clear(); delete cache[KEY]; }, // the next chart tries again
    );
    cache[KEY] = entry;
  }
  return cache[KEY];
}

function ask(entry, me) {
  entry.asker = me;
  function onMessage(msg, buffers) {
    if (!msg || msg.type !== "mlops-magics:bundle") return;
    me.model.off("msg:custom", onMessage);
    if (entry.settled || entry.importing) return;
    if (msg.error) {
      entry.reject(new Error(msg.error));
      return;
    }
    entry.importing = true;
    const text = new TextDecoder().decode(buffers[0]);
    const url = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
    import(/* webpackIgnore: true */ url).then(
      (mod) => { URL.revokeObjectURL(url); entry.resolve(mod); },
      (err) => { URL.revokeObjectURL(url); entry.reject(err); },
    );
  }
  me.model.on("msg:custom", onMessage);
  me.model.send({ type: "mlops-magics:bundle?" });
}

// One request per page, however many charts wait. A busy kernel answers when its cell
// ends. If the chart that asked goes away first (output cleared, kernel restarted), one of
// the charts still waiting asks in its place.
function loadBundle(model, el) {
  const entry = shared();
  if (entry.settled) return entry.promise;
  const me = { model, el, seen: false };
  entry.waiters.add(me);
  if (!entry.asker) ask(entry, me);
  const watch = setInterval(() => {
    me.seen ||= el.isConnected;
    if (entry.settled || !entry.waiters.has(me)) {
      clearInterval(watch);
    } else if (me.seen && !el.isConnected) {
      clearInterval(watch);
      entry.waiters.delete(me);
      if (entry.asker === me && !entry.importing) {
        entry.asker = null;
        // A chart on the page (or not attached yet) asks; if none, the next chart drawn does.
        const next = [...entry.waiters].find((w) => w.el.isConnected || !w.seen);
        if (next) ask(entry, next);
      }
    }
  }, 1000);
  return entry.promise;
}

async function render({ model, el }) {
  el.classList.add("mlops-magics-chart");
  const waiting = document.createElement("div");
  waiting.className = "mlops-magics-loading";
  waiting.textContent = "loading chart…";
  el.appendChild(waiting);
  const slow = setTimeout(() => {
    waiting.textContent = "loading chart: waiting for the kernel to send the chart library (busy?)…";
  }, SLOW_MS);
  let mod;
  try {
    mod = await loadBundle(model, el);
  } catch (err) {
    waiting.textContent = "mlops-magics: could not load the chart library: " + err.message;
    waiting.style.color = "#c62828";
    return;
  } finally {
    clearTimeout(slow);
  }
  waiting.remove();
  return mod.default.render({ model, el });
}

export default { render };
