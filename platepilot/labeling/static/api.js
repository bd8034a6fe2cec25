// Shared by the labeling page and the dashboard (served to both as /static/api.js, before their app.js).
"use strict";

// A validation error's detail is a list of {loc, msg}: one line of them, not "[object Object]".
function detailText(detail) {
  if (!Array.isArray(detail)) return detail;
  return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
}

// GET `path`, or POST `body` as JSON; the answer's JSON, or an Error with the server's detail.
async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(detailText(data.detail) || data.error || `${res.status} ${res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return data;
}
