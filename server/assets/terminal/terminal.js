// Browser end of the terminal relay: xterm.js <-> /api/terminal/relay.
// Keystrokes go out as binary frames, resizes as {"type":"resize"} text frames;
// binary frames from the CLI are PTY output. Reconnects with the same token on 1012
// (server restarting or draining for a release) and 4010 (the CLI's relay vanished).
(function () {
  const $ = (id) => document.getElementById(id);
  const status = (text) => { $("status").textContent = text; document.title = "MAS terminal – " + text; };
  const term = new Terminal({ cursorBlink: true, convertEol: false, fontSize: 14 });
  term.open($("term"));
  const encoder = new TextEncoder();
  let ws = null;
  // Reconnects in a row without pairing; reset once paired.
  let attempts = 0;
  const MAX_ATTEMPTS = 10;

  function fit() {
    const el = $("term");
    const cell = term._core?._renderService?.dimensions?.css?.cell;
    if (!cell || !cell.width) return;
    const cols = Math.max(20, Math.floor(el.clientWidth / cell.width));
    const rows = Math.max(5, Math.floor(el.clientHeight / cell.height));
    if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
  }

  function sendResize() {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    }
  }

  function connect(token) {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/terminal/relay";
    ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    status("connecting");
    ws.onopen = () => {
      ws.send(JSON.stringify({ token, role: "browser" }));
      sendResize();
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        let notice = null;
        try { notice = JSON.parse(ev.data); } catch (_) { /* plain text from the CLI */ }
        if (notice && notice.type === "waiting") return status("waiting for CLI");
        if (notice && notice.type === "paired") { attempts = 0; status("paired"); term.focus(); return; }
        term.write(ev.data);
      } else {
        term.write(new Uint8Array(ev.data));
      }
    };
    ws.onclose = (ev) => {
      status("closed " + ev.code + (ev.reason ? ": " + ev.reason : ""));
      // 1006 (no connection) only counts while already reconnecting: the new server may
      // still be coming up.
      const retry = ev.code === 1012 || ev.code === 4010 || (ev.code === 1006 && attempts > 0);
      if (!retry || attempts >= MAX_ATTEMPTS) return;
      attempts += 1;
      // Jittered backoff, so a drained replica's clients do not all return at once.
      const delay = 250 * attempts + Math.random() * 500;
      status("reconnecting (" + ev.code + ")");
      setTimeout(() => connect(token), delay);
    };
  }

  term.onData((data) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data)); });
  term.onResize(sendResize);
  window.addEventListener("resize", fit);
  setTimeout(fit, 50);

  $("pair").onclick = async () => {
    const res = await fetch("/api/terminal/pairings", {
      method: "POST",
      headers: { Authorization: "Bearer " + $("access").value.trim() },
    });
    const body = await res.json();
    if (!body.success) return status("pairing failed: " + body.error.message);
    $("pairing").value = body.data.token;
    $("command").textContent = "mas-terminal --url " + location.origin + " --token " + body.data.token;
    connect(body.data.token);
  };
  $("connect").onclick = () => connect($("pairing").value.trim());

  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) { $("pairing").value = fromHash; connect(fromHash); }
})();
