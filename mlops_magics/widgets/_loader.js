// mlops-magics chart loader: the only JavaScript stored with each chart (about 2 kB).
//
// Vega, Vega-Lite, vega-embed and Altair's JupyterChart renderer (about 0.9 MB, bundled
// by vl-convert in the kernel) are asked of the kernel ONCE per browser page over this
// widget's comm, imported from a blob: URL and shared by every chart on the page. Nothing
// is fetched from a CDN, and the bundle never lands in the notebook's saved widget state.
const KEY = "__BUNDLE_KEY__";
const TIMEOUT_MS = 60000;

function loadBundle(model) {
  const cache = (globalThis.__mlopsMagicsVega ??= {});
  if (!cache[KEY]) {
    cache[KEY] = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        model.off("msg:custom", onMessage);
        reject(new Error("the kernel did not send the chart library (is it busy or stopped?)"));
      }, TIMEOUT_MS);
      function onMessage(msg, buffers) {
        if (!msg || msg.type !== "mlops-magics:bundle") return;
        clearTimeout(timer);
        model.off("msg:custom", onMessage);
        if (msg.error) {
          reject(new Error(msg.error));
          return;
        }
        const text = new TextDecoder().decode(buffers[0]);
        const url = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
        import(/* webpackIgnore: true */ url).then(
          (mod) => { URL.revokeObjectURL(url); resolve(mod); },
          (err) => { URL.revokeObjectURL(url); reject(err); },
        );
      }
      model.on("msg:custom", onMessage);
      model.send({ type: "mlops-magics:bundle?" });
    }).catch((err) => {
      delete cache[KEY]; // let the next chart try again
      throw err;
    });
  }
  return cache[KEY];
}

async function render({ model, el }) {
  el.classList.add("mlops-magics-chart");
  const waiting = document.createElement("div");
  waiting.className = "mlops-magics-loading";
  waiting.textContent = "loading chart…";
  el.appendChild(waiting);
  let mod;
  try {
    mod = await loadBundle(model);
  } catch (err) {
    waiting.textContent = "mlops-magics: could not load the chart library: " + err.message;
    waiting.style.color = "#c62828";
    return;
  }
  waiting.remove();
  return mod.default.render({ model, el });
}

export default { render };
