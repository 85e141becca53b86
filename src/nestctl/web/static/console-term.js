// A terminal: xterm.js (pve-xtermjs, or Debian's node-xterm) speaking Proxmox's termproxy
// protocol exactly as Proxmox's own client does (pve-xtermjs xterm.js/src/main.js):
//   "OK" first from the server, then raw output             (main.js:239-241)
//   input  "0:" + UTF-8 byte length + ":" + data            (main.js:256)
//   resize "1:" + cols + ":" + rows + ":"                    (main.js:195)
//   ping   "2" every 30 s                                     (main.js:260-262)
// The first line, "USER:TICKET\n" (main.js:274), is sent by the dashboard itself, so the
// Proxmox ticket never reaches this page.
(function () {
  'use strict';
  const box = document.getElementById('console');
  const screen = document.getElementById('console-screen');
  const statusLine = document.getElementById('console-status');
  const retryButton = document.getElementById('console-reconnect');
  const SEQ = {esc: '\x1b', tab: '\t', left: '\x1b[D', up: '\x1b[A', down: '\x1b[B', right: '\x1b[C',
               enter: '\r'};
  const Term = window.Terminal && (window.Terminal.Terminal || window.Terminal);
  let socket = null;
  let connected = false;
  let ping = null;
  let ctrlHeld = false;
  const encoder = new TextEncoder();
  window.nestctlConsole = {state: 'connecting', sockets: 0, text: ''};

  function say(text, bad) {
    statusLine.textContent = text;
    statusLine.className = 'console-status' + (bad ? ' error' : '');
    window.nestctlConsole.state = text;
  }

  if (!Term) { say('xterm.js did not load.', true); return; }
  const width = box.clientWidth || window.innerWidth;
  const fontSize = width < 480 ? 13 : 15;  // about 45 columns on a 390 px phone
  const term = new Term({fontSize: fontSize, fontFamily: 'ui-monospace, Menlo, Consolas, monospace',
                         cursorBlink: true, scrollback: 2000});
  term.open(screen);

  function onData(fn) { return term.onData ? term.onData(fn) : term.on('data', fn); }
  function onResize(fn) { return term.onResize ? term.onResize(fn) : term.on('resize', fn); }

  function geometry() {
    // Columns and rows that fit the box, from one measured character of the terminal's font.
    const probe = document.createElement('span');
    probe.textContent = 'WWWWWWWWWW';
    probe.style.fontFamily = 'ui-monospace, Menlo, Consolas, monospace';
    probe.style.fontSize = fontSize + 'px';
    probe.style.position = 'absolute';
    probe.style.visibility = 'hidden';
    document.body.appendChild(probe);
    const cw = probe.getBoundingClientRect().width / 10;
    const ch = probe.getBoundingClientRect().height;
    probe.remove();
    const cols = Math.max(20, Math.floor((screen.clientWidth - 14) / cw));
    const rows = Math.max(8, Math.floor((screen.clientHeight - 4) / (ch * 1.0)));
    return {cols: cols, rows: rows};
  }
  function fit() {
    const g = geometry();
    if (g.cols !== term.cols || g.rows !== term.rows) { term.resize(g.cols, g.rows); }
  }
  fit();

  function sendInput(data) {
    if (!connected) { return; }
    socket.send('0:' + encoder.encode(data).length + ':' + data);
  }

  onData(function (data) {
    if (ctrlHeld && data.length === 1) {
      const c = data.toUpperCase().charCodeAt(0);
      if (c >= 64 && c < 96) { data = String.fromCharCode(c - 64); }
      setCtrl(false);
    }
    sendInput(data);
  });
  onResize(function (size) {
    if (connected) { socket.send('1:' + size.cols + ':' + size.rows + ':'); }
  });
  window.addEventListener('resize', function () { setTimeout(fit, 250); });

  async function openConsole() {
    const body = new URLSearchParams({kind: box.dataset.kind, node: box.dataset.node, vmid: box.dataset.vmid});
    try {
      const reply = await fetch(box.dataset.open, {
        method: 'POST', body: body, credentials: 'same-origin',
        headers: {'X-CSRF-Token': box.dataset.csrf, 'Accept': 'application/json'},
      });
      let data = {};
      try { data = await reply.json(); } catch (e) { data = {error: 'The dashboard answered ' + reply.status + '.'}; }
      if (!reply.ok) { data.status = reply.status; }
      return data;
    } catch (e) {
      return {error: 'The dashboard cannot be reached.'};
    }
  }

  async function connect() {
    retryButton.hidden = true;
    say('Connecting…');
    const grant = await openConsole();
    if (grant.error) {
      say(grant.error, true);
      if (grant.status === 403 || grant.status === 400) {
        // Refused: nothing here can work, so only the message stays (no terminal, no keys).
        ['console', 'keybar', 'console-paste'].forEach(function (id) { document.getElementById(id).hidden = true; });
      } else {
        retryButton.hidden = false;
      }
      return;
    }
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + grant.ws;
    const decoder = new TextDecoder();
    let greeted = false;
    window.nestctlConsole.sockets += 1;
    socket = new WebSocket(url, 'binary');
    socket.binaryType = 'arraybuffer';
    socket.onmessage = function (event) {
      let bytes = new Uint8Array(event.data);
      if (!greeted) {
        if (bytes[0] !== 79 || bytes[1] !== 75) { socket.close(); return; }  // "OK"
        greeted = true;
        connected = true;
        say('Connected');
        window.nestctlConsole.state = 'connected';
        socket.send('1:' + term.cols + ':' + term.rows + ':');
        bytes = bytes.slice(2);
        term.focus();
      }
      const text = decoder.decode(bytes, {stream: true});
      window.nestctlConsole.text = (window.nestctlConsole.text + text).slice(-20000);
      term.write(text);
    };
    socket.onclose = function (event) {
      connected = false;
      clearInterval(ping);
      let why = 'The console closed.';
      if (event.code === 4408) { why = 'Closed: ' + (event.reason || 'no input for too long') + '.'; }
      else if (event.code === 4502) { why = event.reason || 'Proxmox refused the console.'; }
      else if (event.code === 1008) { why = 'The dashboard refused the console (log in again).'; }
      else if (!greeted) { why = 'The console did not start (is the guest running?).'; }
      say(why, true);
      retryButton.hidden = false;
    };
    ping = setInterval(function () { if (connected) { socket.send('2'); } }, 30 * 1000);
  }

  function setCtrl(on) {
    ctrlHeld = on;
    const b = document.querySelector('[data-key="ctrl"]');
    if (b) { b.setAttribute('aria-pressed', on ? 'true' : 'false'); }
  }

  document.getElementById('keybar').addEventListener('click', function (e) {
    const b = e.target.closest('button[data-key]');
    if (!b) { return; }
    const key = b.dataset.key;
    if (key === 'ctrl') { setCtrl(!ctrlHeld); term.focus(); return; }
    if (SEQ[key]) { sendInput(SEQ[key]); }
    term.focus();
  });
  document.getElementById('console-paste').addEventListener('submit', function (e) {
    e.preventDefault();
    const input = document.getElementById('paste-text');
    sendInput(input.value);  // no Enter: the key bar's Enter runs it
    input.value = '';
  });
  retryButton.addEventListener('click', connect);
  connect();
})();
