// Minimal offline API reference built from /openapi.json (FastAPI's Swagger UI would load from a CDN).
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function typeOf(schema) {
  if (!schema) return "";
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(" | ");
  return schema.format ? `${schema.type} (${schema.format})` : schema.type || "";
}

async function main() {
  const root = document.getElementById("api");
  const spec = await (await fetch("/openapi.json")).json();
  root.replaceChildren();
  root.appendChild(el("p", `${spec.info.title} ${spec.info.version}: ${spec.info.description || ""}`));
  root.appendChild(el("p", "WebSocket /api/stream: send JPEG frames as binary messages; each is answered by one " +
    "JSON message {type: \"frame\", width, height, faces, ms, error} (plus image when a filter is set). " +
    "A text message {\"filter\": \"a,b\"} sets the filters.", "muted"));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const sec = el("section");
      sec.appendChild(el("h2", `${method.toUpperCase()} ${path}`));
      if (op.summary) sec.appendChild(el("p", op.summary));
      if (op.description) sec.appendChild(el("pre", op.description));
      if (op.parameters && op.parameters.length) {
        const t = el("table");
        t.appendChild(el("tr")).append(el("th", "parameter"), el("th", "in"), el("th", "type"), el("th", "description"));
        for (const p of op.parameters) {
          t.appendChild(el("tr")).append(el("td", p.name), el("td", p.in), el("td", typeOf(p.schema)),
            el("td", p.description || ""));
        }
        sec.appendChild(t);
      }
      if (op.requestBody) {
        sec.appendChild(el("p", "body: " + Object.keys(op.requestBody.content).join(", ")));
      }
      const codes = Object.entries(op.responses || {}).map(([c, r]) => `${c} ${r.description}`);
      if (codes.length) sec.appendChild(el("p", "responses: " + codes.join("; "), "muted"));
      root.appendChild(sec);
    }
  }
}

main().catch((e) => { document.getElementById("api").textContent = `cannot load /openapi.json: ${e.message}`; });
