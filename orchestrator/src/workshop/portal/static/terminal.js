// terminal.js: the lab page's terminal. xterm.js (served from /assets, fetched by
// scripts/web-assets) connected to /term: binary frames carry terminal bytes both
// ways, a text frame {"cols","rows"} is a resize. window.zlTerminal lets portal.js
// reconnect (another node, a new lab) and tests read the screen.
"use strict";
(function () {
  const element = document.getElementById("terminal");
  if (!element) return;
  const status = document.getElementById("term-status");
  const nodes = document.getElementById("node");
  const term = new Terminal({ cursorBlink: true, convertEol: false, scrollback: 2000 });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(element);
  fit.fit();
  const encoder = new TextEncoder();
  let socket = null;

  function connect() {
    if (socket) socket.close();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const node = nodes && nodes.value ? "&node=" + encodeURIComponent(nodes.value) : "";
    const url = scheme + "//" + location.host + "/term?cols=" + term.cols + "&rows=" + term.rows + node;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    socket = ws;
    status.textContent = "connecting…";
    ws.onopen = () => { status.textContent = "connected"; };
    ws.onmessage = (event) => {
      if (event.data instanceof ArrayBuffer) term.write(new Uint8Array(event.data));
    };
    ws.onclose = () => {
      if (socket === ws) {
        socket = null;
        status.textContent = "disconnected";
      }
    };
  }

  term.onData((data) => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  term.onResize(({ cols, rows }) => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ cols, rows }));
  });
  window.addEventListener("resize", () => fit.fit());
  if (nodes) nodes.addEventListener("change", connect);

  window.zlTerminal = {
    term,
    connect,
    connected: () => socket !== null && socket.readyState === WebSocket.OPEN,
    // The screen's text, line by line (what the browser tests read).
    text: () => {
      const buffer = term.buffer.active;
      const lines = [];
      for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
      return lines.join("\n");
    },
  };
  connect();
  term.focus();
})();
