// portal.js: keeps the attendee's page current. Every few seconds it reads /api/view
// and updates the steps, the lab, the time left and the notice (text only; a step's
// instructions are the service's HTML); the queue page turns into the lab page once a
// lab is assigned; a new lab (reset, replaced) reconnects the terminal. Check and Add
// key post with the page's CSRF token.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const queue = document.getElementById("queue");
  const byId = (id) => document.getElementById(id);
  let lab = byId("lab-name") ? byId("lab-name").textContent : null;
  let secondsLeft = null;

  function post(path, fields) {
    const body = new URLSearchParams(Object.assign({ csrf }, fields));
    return fetch(path, { method: "POST", body, credentials: "same-origin" });
  }

  function show(view) {
    if (queue) {
      if (view.lab) location.reload();
      else if (view.queue) {
        byId("position").textContent = view.queue.position;
        byId("estimate").textContent = view.queue.estimate;
      }
      return;
    }
    if (!view.lab) { location.reload(); return; }
    byId("lab-state").textContent = view.state || "";
    const notice = byId("notice");
    notice.textContent = view.notice || "";
    notice.hidden = !view.notice;
    const list = byId("steps");
    list.replaceChildren(...view.steps.map((step, i) => {
      const item = document.createElement("li");
      item.textContent = step.title;
      if (step.done) item.classList.add("done");
      if (i === view.step) item.classList.add("current");
      return item;
    }));
    const current = view.steps[view.step];
    const html = current ? current.html : "";
    if (byId("step").dataset.html !== html) {
      byId("step").innerHTML = html;
      byId("step").dataset.html = html;
    }
    if (view.ssh) { byId("ssh").textContent = view.ssh; byId("ssh-command").hidden = false; }
    secondsLeft = view.time_left;
    if (view.lab !== lab) {
      lab = view.lab;
      byId("lab-name").textContent = lab;
      const nodes = byId("node");
      nodes.replaceChildren(...view.nodes.map((name) => {
        const option = document.createElement("option");
        option.textContent = name;
        return option;
      }));
      if (window.zlTerminal) window.zlTerminal.connect();
    }
  }

  async function refresh() {
    try {
      const response = await fetch("/api/view", { credentials: "same-origin" });
      if (response.status === 401) { location.href = "/"; return; }
      if (response.ok) show(await response.json());
    } catch (e) {
      // The portal restarting: try again at the next refresh.
    }
  }

  function countdown() {
    const left = byId("time-left");
    if (!left || secondsLeft === null) return;
    secondsLeft = Math.max(0, secondsLeft - 1);
    const h = Math.floor(secondsLeft / 3600), m = Math.floor(secondsLeft / 60) % 60, s = secondsLeft % 60;
    const pad = (n) => String(n).padStart(2, "0");
    left.textContent = h > 0 ? h + "h " + pad(m) + "m" : m > 0 ? m + "m " + pad(s) + "s" : s + "s";
  }

  const check = byId("check-form");
  if (check) {
    check.addEventListener("submit", async (event) => {
      event.preventDefault();
      byId("check-result").textContent = "checking…";
      const response = await post("/check", {});
      if (response.ok) {
        show(await response.json());
        byId("check-result").textContent = "checked";
      } else {
        byId("check-result").textContent = await response.text();
      }
    });
  }
  const key = byId("ssh-form");
  if (key) {
    key.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await post("/ssh-key", { key: byId("ssh-key").value });
      if (response.ok) {
        const answer = await response.json();
        byId("ssh").textContent = answer.ssh;
        byId("ssh-command").hidden = false;
        byId("ssh-result").textContent = "added";
      } else {
        byId("ssh-result").textContent = await response.text();
      }
    });
  }
  const left = byId("time-left");
  if (left && left.dataset.seconds) secondsLeft = Number(left.dataset.seconds);
  setInterval(refresh, queue ? 2000 : 3000);
  setInterval(countdown, 1000);
})();
