// The standalone page: the explorer talking to its server over HTTP, its state in the URL.
import { mount } from "./explorer.js";

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ error: { message: `server answered ${response.status}` } }));
  return data;
}

const explorer = mount(document.getElementById("explorer"), {
  layer: (state) => post("/api/layer", state),
  solve: (request) => post("/api/solve", request),
  readUrl: () => location.hash.slice(1),
  writeUrl: (query) => history.replaceState(null, "", "#" + query),
});

window.convarithExplorer = explorer; // for the console and the benchmark

// a link edited or pasted into the address bar: draw its state
window.addEventListener("hashchange", () => explorer.load(location.hash.slice(1)));
