// A VM's screen: noVNC (from the novnc / novnc-pve package, served under /vendor/novnc/) over
// the dashboard's WebSocket, which relays to Proxmox's vncwebsocket as the visitor.
// Phone: scaled to fit, pinch to zoom (then pan by scrolling), a key bar, text pasted as
// keystrokes, and a reconnect after the VM reboots.
import RFB from '/vendor/novnc/core/rfb.js';

const box = document.getElementById('console');
const screen = document.getElementById('console-screen');
const statusLine = document.getElementById('console-status');
const retryButton = document.getElementById('console-reconnect');
const idleSeconds = Number(box.dataset.idle) || 900;
const KEYS = {esc: 0xff1b, tab: 0xff09, left: 0xff51, up: 0xff52, right: 0xff53, down: 0xff54,
              enter: 0xff0d, ctrl: 0xffe3};
let rfb = null;
let ctrlHeld = false;
let lastInput = Date.now();
let attempts = 0;
let refused = false;
let zoom = 1;
window.nestctlConsole = {state: 'connecting', sockets: 0};

function say(text, bad) {
  statusLine.textContent = text;
  statusLine.className = 'console-status' + (bad ? ' error' : '');
  window.nestctlConsole.state = text;
}

async function openConsole() {
  const body = new URLSearchParams({kind: 'vnc', node: box.dataset.node, vmid: box.dataset.vmid});
  let reply;
  try {
    reply = await fetch(box.dataset.open, {
      method: 'POST', body, credentials: 'same-origin',
      headers: {'X-CSRF-Token': box.dataset.csrf, 'Accept': 'application/json'},
    });
  } catch (e) {
    return {error: 'The dashboard cannot be reached.'};
  }
  let data = {};
  try { data = await reply.json(); } catch (e) { data = {error: 'The dashboard answered ' + reply.status + '.'}; }
  if (!reply.ok) { data.status = reply.status; }
  return data;
}

async function connect() {
  retryButton.hidden = true;
  say(attempts ? 'Reconnecting…' : 'Connecting…');
  const grant = await openConsole();
  if (grant.error) {
    refused = grant.status === 403 || grant.status === 400;
    say(grant.error, true);
    if (!refused) { scheduleRetry(); return; }
    // Refused: nothing here can work, so only the message stays (no screen, no keys).
    ['console', 'keybar', 'console-paste'].forEach((id) => { document.getElementById(id).hidden = true; });
    return;
  }
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + grant.ws;
  window.nestctlConsole.sockets += 1;
  rfb = new RFB(screen, url, {credentials: {password: grant.password || ''}, wsProtocols: ['binary']});
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.focusOnClick = true;
  rfb.addEventListener('connect', () => {
    attempts = 0;
    lastInput = Date.now();
    say('Connected');
    window.nestctlConsole.state = 'connected';
  });
  rfb.addEventListener('credentialsrequired', () => rfb.sendCredentials({password: grant.password || ''}));
  let failed = null;
  rfb.addEventListener('securityfailure', (e) => {
    failed = 'The VM refused the screen: ' + (e.detail.reason || 'authentication failed') + '.';
  });
  rfb.addEventListener('disconnect', () => {
    rfb = null;
    if (failed) { say(failed, true); retryButton.hidden = false; return; }
    if (Date.now() - lastInput > idleSeconds * 1000) {
      say('Closed after ' + idleSeconds + ' s without input.', true);
      retryButton.hidden = false;
      return;
    }
    scheduleRetry();
  });
}

function scheduleRetry() {
  // A rebooting VM drops the screen; it is back within seconds to a minute or two.
  attempts += 1;
  if (attempts > 40) {
    say('The screen is gone (is the VM stopped?).', true);
    retryButton.hidden = false;
    return;
  }
  say('Disconnected; reconnecting in 3 s (the VM may be restarting)…', true);
  setTimeout(connect, 3000);
}

retryButton.addEventListener('click', () => { attempts = 0; connect(); });

function send(keysym) {
  if (!rfb) { return; }
  lastInput = Date.now();
  if (ctrlHeld && keysym !== KEYS.ctrl) {
    rfb.sendKey(KEYS.ctrl, 'ControlLeft', true);
    rfb.sendKey(keysym);
    rfb.sendKey(KEYS.ctrl, 'ControlLeft', false);
    setCtrl(false);
    return;
  }
  rfb.sendKey(keysym);
}

function setCtrl(on) {
  ctrlHeld = on;
  const b = document.querySelector('[data-key="ctrl"]');
  if (b) { b.setAttribute('aria-pressed', on ? 'true' : 'false'); }
}

function keysymOf(ch) {
  if (ch === '\n') { return KEYS.enter; }
  if (ch === '\t') { return KEYS.tab; }
  const code = ch.codePointAt(0);
  // X11 keysyms: Latin-1 as is, anything else Unicode + 0x01000000.
  return (code >= 0x20 && code <= 0xff) ? code : 0x01000000 + code;
}

// QEMU turns a keysym into a key press of its (US) keymap and keeps the modifiers the client
// holds: '$' alone arrives as '4'. A pasted character that needs Shift is typed with Shift held.
const SHIFTED = '~!@#$%^&*()_+{}|:"<>?';
function typeChar(ch) {
  if (!rfb) { return; }
  lastInput = Date.now();
  const shift = SHIFTED.includes(ch) || (ch >= 'A' && ch <= 'Z');
  if (shift) { rfb.sendKey(0xffe1, 'ShiftLeft', true); }
  rfb.sendKey(keysymOf(ch));
  if (shift) { rfb.sendKey(0xffe1, 'ShiftLeft', false); }
}

document.getElementById('keybar').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-key]');
  if (!b) { return; }
  const key = b.dataset.key;
  if (key === 'cad') { if (rfb) { lastInput = Date.now(); rfb.sendCtrlAltDel(); } return; }
  if (key === 'ctrl') { setCtrl(!ctrlHeld); return; }
  if (key === 'fit') { setZoom(1); return; }
  send(KEYS[key]);
  if (rfb) { rfb.focus(); }
});

document.getElementById('console-paste').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = document.getElementById('paste-text');
  for (const ch of input.value) { typeChar(ch); }
  input.value = '';  // no Enter: the key bar's Enter runs it, when the visitor wants
});

// Pinch to zoom: the screen's box grows beyond the page and noVNC scales to it; the wrapper
// scrolls. Two-finger gestures are taken before noVNC's own (which would send them to the VM).
function setZoom(z) {
  zoom = Math.min(4, Math.max(1, z));
  screen.style.width = (100 * zoom) + '%';
  screen.style.height = (100 * zoom) + '%';
  const fit = document.querySelector('[data-key="fit"]');
  if (fit) { fit.setAttribute('aria-pressed', zoom === 1 ? 'true' : 'false'); }
}
let pinch = null;
function spread(t) { return Math.hypot(t[0].clientX - t[1].clientX, t[0].clientY - t[1].clientY); }
box.addEventListener('touchstart', (e) => {
  if (e.touches.length === 2) { pinch = {d: spread(e.touches), z: zoom}; e.stopPropagation(); }
}, {capture: true, passive: true});
box.addEventListener('touchmove', (e) => {
  if (pinch && e.touches.length === 2) {
    setZoom(pinch.z * spread(e.touches) / pinch.d);
    e.stopPropagation();
    e.preventDefault();
  }
}, {capture: true, passive: false});
box.addEventListener('touchend', () => { pinch = null; }, {capture: true, passive: true});
['keydown', 'pointerdown'].forEach((t) => box.addEventListener(t, () => { lastInput = Date.now(); }, {capture: true}));

connect();
