// instructor.js: the instructor's live table. It listens to /instructor/events
// (Server-Sent Events, one "overview" per change and every few seconds), draws each
// attendee as a row (text only) and posts the actions with the page's CSRF token.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const body = document.querySelector("#attendees tbody");
  const live = document.getElementById("live");
  const actions = ["reset", "extend", "shelve", "unshelve"];

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    return td;
  }

  function draw(overview) {
    const pool = overview.pool || {};
    document.getElementById("pool").textContent =
      "pool: " + Object.entries(pool).map(([k, v]) => k + " " + v).join(", ");
    body.replaceChildren(...overview.attendees.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.id = row.id;
      tr.dataset.name = row.name;
      const lab = row.lab || (row.queued ? "queued #" + row.queued : "");
      tr.append(cell(row.name), cell(lab), cell(row.state), cell(row.step), cell(row.activity), cell(row.time_left));
      const td = document.createElement("td");
      for (const action of actions) {
        const button = document.createElement("button");
        button.textContent = action;
        button.dataset.action = action;
        button.addEventListener("click", () => act(row.id, action, button));
        td.append(button);
      }
      tr.append(td);
      return tr;
    }));
  }

  async function act(id, action, button) {
    button.disabled = true;
    const form = new URLSearchParams({ csrf, id, action });
    const response = await fetch("/instructor/action", { method: "POST", body: form, credentials: "same-origin" });
    button.disabled = false;
    live.textContent = response.ok ? action + ": done" : action + ": " + (await response.text());
  }

  const events = new EventSource("/instructor/events");
  events.addEventListener("overview", (event) => {
    live.textContent = "live";
    draw(JSON.parse(event.data));
  });
  events.onerror = () => { live.textContent = "reconnecting…"; };
})();
