// Drives headless Chromium over the DevTools protocol: opens URL, waits until
// the page's terminal shows EXPECT (and the title says "paired"), saves a PNG
// screenshot and prints {"ok":..,"title":..,"text":..} on stdout.
//   node screenshot.mjs <url> <expect> <png path> <user-data-dir>
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import WebSocket from "ws";

const [url, expect, png, profile] = process.argv.slice(2);
// MAS_CHROMIUM names the binary (the Rust tests always pass it); else `chromium` on PATH.
const chrome = spawn(process.env.MAS_CHROMIUM || "chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  `--user-data-dir=${profile}`, "--window-size=1000,600", "--remote-debugging-port=0", "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });

const endpoint = await new Promise((resolve, reject) => {
  let buf = "";
  chrome.stderr.on("data", (d) => {
    buf += d;
    const m = buf.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) resolve(m[1]);
  });
  chrome.on("exit", () => reject(new Error("chromium exited: " + buf.slice(-500))));
});

const browser = new WebSocket(endpoint);
await new Promise((r) => browser.once("open", r));
let nextId = 0;
const pending = new Map();
browser.on("message", (raw) => {
  const msg = JSON.parse(raw);
  if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
});
const send = (method, params = {}, sessionId) => new Promise((resolve) => {
  const id = ++nextId;
  pending.set(id, resolve);
  browser.send(JSON.stringify({ id, method, params, sessionId }));
});

const { result: { targetId } } = await send("Target.createTarget", { url: "about:blank" });
const { result: { sessionId } } = await send("Target.attachToTarget", { targetId, flatten: true });
await send("Page.enable", {}, sessionId);
await send("Emulation.setDeviceMetricsOverride", { width: 1000, height: 600, deviceScaleFactor: 1, mobile: false }, sessionId);
await send("Page.navigate", { url }, sessionId);

const evaluate = async (expression) =>
  (await send("Runtime.evaluate", { expression, returnByValue: true }, sessionId)).result?.result?.value;

let state = { title: "", text: "" };
const deadline = Date.now() + 20000;
while (Date.now() < deadline) {
  state = await evaluate(`({ title: document.title,
      text: [...document.querySelectorAll('.xterm-rows > div')].map(r => r.textContent).join('\\n') })`) ?? state;
  if (state.title.includes("paired") && state.text.includes(expect)) break;
  await new Promise((r) => setTimeout(r, 200));
}
const ok = state.title.includes("paired") && state.text.includes(expect);
const shot = await send("Page.captureScreenshot", { format: "png" }, sessionId);
writeFileSync(png, Buffer.from(shot.result.data, "base64"));
process.stdout.write(JSON.stringify({ ok, ...state }) + "\n");
browser.close();
chrome.kill();
process.exit(0);
