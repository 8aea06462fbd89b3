// bavard's built-in web client: IRC over the server's own WebSocket
// (text.ircv3.net). No dependencies; every piece of text from the network
// goes into the page through textContent, never as HTML.
"use strict";

const WANTED_CAPS = ["server-time", "message-tags", "echo-message", "batch",
  "draft/chathistory", "multi-prefix", "sasl"];
const SERVER = "*server*";
const HISTORY_PAGE = 50;

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const fold = (s) => s.toLowerCase();
const isChannel = (s) => /^[#&]/.test(s);

// --- the IRC line format ---------------------------------------------------

function unescapeTag(v) {
  return v.replace(/\\(.)/g, (_, c) => ({ ":": ";", s: " ", r: "\r", n: "\n", "\\": "\\" }[c] ?? c));
}

function parse(line) {
  const m = { tags: {}, source: null, command: "", params: [] };
  let rest = line;
  if (rest.startsWith("@")) {
    const sp = rest.indexOf(" ");
    for (const t of rest.slice(1, sp).split(";")) {
      const eq = t.indexOf("=");
      if (eq < 0) m.tags[t] = "";
      else m.tags[t.slice(0, eq)] = unescapeTag(t.slice(eq + 1));
    }
    rest = rest.slice(sp + 1).replace(/^ +/, "");
  }
  if (rest.startsWith(":")) {
    const sp = rest.indexOf(" ");
    m.source = rest.slice(1, sp);
    rest = rest.slice(sp + 1).replace(/^ +/, "");
  }
  while (rest.length) {
    if (rest.startsWith(":")) { m.params.push(rest.slice(1)); break; }
    const sp = rest.indexOf(" ");
    if (sp < 0) { m.params.push(rest); break; }
    m.params.push(rest.slice(0, sp));
    rest = rest.slice(sp + 1).replace(/^ +/, "");
  }
  if (m.params.length) m.command = m.params.shift().toUpperCase();
  return m;
}

const nickOf = (source) => (source || "").split("!")[0];
const clean = (s) => String(s).replace(/[\r\n\0]/g, " ");

// --- state -------------------------------------------------------------------

const state = {
  ws: null,
  nick: "",
  wantedNick: "",
  account: "",
  password: "",
  caps: new Set(),
  offered: new Map(),
  registered: false,
  quitting: false,
  retries: 0,
  retryTimer: null,
  channels: [],          // to join (again) once registered
  buffers: new Map(),    // folded name -> buffer
  current: null,
  batches: new Map(),    // batch id -> { type, target, lines }
  listing: [],
  pendingList: null,
};

function buffer(name, create = true) {
  const key = fold(name);
  let b = state.buffers.get(key);
  if (!b && create) {
    b = { name, key, lines: [], members: new Map(), topic: "", unread: false,
          joined: false, oldest: null, msgids: new Set(), names: null, historyDone: false };
    state.buffers.set(key, b);
    renderBufferList();
  }
  return b;
}

// --- the connection ----------------------------------------------------------

function send(line) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(line);
}

function setStatus(text) { $("status").textContent = text; }

function connect() {
  clearTimeout(state.retryTimer);
  state.caps.clear();
  state.offered.clear();
  state.registered = false;
  state.quitting = false;
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
  setStatus("Connecting…");
  let ws;
  try {
    ws = new WebSocket(url, ["text.ircv3.net"]);
  } catch (e) {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  ws.onopen = () => {
    setStatus("Registering…");
    send("CAP LS 302");
    send("NICK " + state.wantedNick);
    send("USER " + (state.account || state.wantedNick) + " 0 * :bavard web client");
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") return;
    for (const line of ev.data.split(/\r?\n/)) if (line) handle(parse(line));
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    state.ws = null;
    for (const b of state.buffers.values()) { b.members.clear(); }
    renderMembers();
    if (state.quitting) { setStatus("Disconnected"); return; }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  // 1 s, 2 s, 4 s… up to a minute, with some jitter so that a restarted
  // server is not hit by every page at once.
  const delay = Math.min(60000, 1000 * 2 ** state.retries) * (0.75 + Math.random() / 2);
  state.retries = Math.min(state.retries + 1, 10);
  setStatus("Disconnected, reconnecting in " + Math.round(delay / 1000) + " s");
  state.retryTimer = setTimeout(connect, delay);
}

function saslPlain() {
  const bytes = new TextEncoder().encode(state.account + "\0" + state.account + "\0" + state.password);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  const b64 = btoa(bin);
  // AUTHENTICATE takes at most 400 bytes a line; an exact multiple ends with "+".
  for (let i = 0; i < b64.length; i += 400) send("AUTHENTICATE " + b64.slice(i, i + 400));
  if (b64.length % 400 === 0) send("AUTHENTICATE +");
}

// --- what the server says ----------------------------------------------------

function handle(m) {
  const p = m.params;
  const batch = m.tags.batch && state.batches.get(m.tags.batch);
  if (batch && (m.command === "PRIVMSG" || m.command === "NOTICE")) {
    batch.lines.push(m);
    return;
  }
  switch (m.command) {
    case "PING": send("PONG :" + (p[0] ?? "")); break;
    case "CAP": onCap(m); break;
    case "AUTHENTICATE":
      if (p[0] === "+") saslPlain();
      break;
    case "900": break;
    case "903": send("CAP END"); break;
    case "902": case "904": case "905": case "906": case "907":
      show(SERVER, { kind: "error-line", text: "Login failed: " + p.slice(1).join(" ") });
      $("login-error").textContent = "Login failed: " + (p[p.length - 1] || "");
      send("CAP END");
      break;
    case "001":
      state.registered = true;
      state.retries = 0;
      state.nick = p[0];
      setStatus("Connected as " + state.nick);
      showChat();
      for (const c of state.channels) send("JOIN " + c);
      requestList();
      show(SERVER, { kind: "event", text: p[p.length - 1] });
      break;
    case "432": case "433": case "436":
      if (!state.registered) {
        state.wantedNick = state.wantedNick.slice(0, 28) + "_";
        send("NICK " + state.wantedNick);
      }
      show(state.current?.name ?? SERVER, { kind: "error-line", text: p.slice(1).join(" ") });
      break;
    case "BATCH": onBatch(m); break;
    case "PRIVMSG": case "NOTICE": onMessage(m, false); break;
    case "JOIN": onJoin(m); break;
    case "PART": onPart(m, nickOf(m.source), p[0], p[1]); break;
    case "KICK": onPart(m, p[1], p[0], "kicked by " + nickOf(m.source) + (p[2] ? ": " + p[2] : "")); break;
    case "QUIT": onQuit(m); break;
    case "NICK": onNick(m); break;
    case "TOPIC": {
      const b = buffer(p[0]);
      b.topic = p[1] ?? "";
      show(b.name, { time: m.tags.time, kind: "event", text: nickOf(m.source) + " set the topic: " + b.topic });
      if (b === state.current) $("topic").textContent = b.topic;
      break;
    }
    case "332": {
      const b = buffer(p[1]);
      b.topic = p[2] ?? "";
      if (b === state.current) $("topic").textContent = b.topic;
      break;
    }
    case "353": {
      const b = buffer(p[2]);
      if (!b.names) b.names = new Map();
      for (const entry of (p[3] || "").split(" ")) {
        if (!entry) continue;
        const nick = entry.replace(/^[~&@%+]+/, "");
        b.names.set(fold(nick), { nick, modes: entry.slice(0, entry.length - nick.length) });
      }
      break;
    }
    case "366": {
      const b = buffer(p[1]);
      if (b.names) { b.members = b.names; b.names = null; }
      if (b === state.current) renderMembers();
      break;
    }
    case "321": state.pendingList = []; break;
    case "322":
      (state.pendingList ??= []).push({ name: p[1], users: p[2], topic: p[3] ?? "" });
      break;
    case "323":
      state.listing = (state.pendingList ?? []).sort((a, b) => b.users - a.users);
      state.pendingList = null;
      renderChannelList();
      break;
    case "FAIL": case "WARN":
      show(state.current?.name ?? SERVER, { kind: "error-line", text: p.slice(2).join(" ") });
      break;
    case "ERROR":
      show(SERVER, { kind: "error-line", text: p[0] ?? "Connection closed" });
      break;
    default:
      if (/^\d{3}$/.test(m.command)) {
        const text = p.slice(1).join(" ");
        const error = m.command[0] === "4" || m.command[0] === "5";
        show(error && state.current ? state.current.name : SERVER,
             { time: m.tags.time, kind: error ? "error-line" : "event", text });
      }
  }
}

function onCap(m) {
  const p = m.params;
  const sub = (p[1] || "").toUpperCase();
  if (sub === "LS") {
    const more = p[2] === "*";
    for (const c of (more ? p[3] : p[2] || "").split(" ")) {
      if (!c) continue;
      const eq = c.indexOf("=");
      state.offered.set(eq < 0 ? c : c.slice(0, eq), eq < 0 ? "" : c.slice(eq + 1));
    }
    if (more) return;
    const want = WANTED_CAPS.filter((c) => state.offered.has(c) && (c !== "sasl" || state.account));
    if (want.length) send("CAP REQ :" + want.join(" "));
    else send("CAP END");
  } else if (sub === "ACK") {
    for (const c of (p[2] || "").split(" ")) if (c) state.caps.add(c.replace(/^-/, ""));
    if (state.caps.has("sasl") && state.account && !state.registered) send("AUTHENTICATE PLAIN");
    else if (!state.registered) send("CAP END");
  } else if (sub === "NAK") {
    if (!state.registered) send("CAP END");
  }
}

function onBatch(m) {
  const id = m.params[0].slice(1);
  if (m.params[0][0] === "+") {
    state.batches.set(id, { type: m.params[1], target: m.params[2], lines: [] });
    return;
  }
  const b = state.batches.get(id);
  state.batches.delete(id);
  if (!b) return;
  // A page of older history goes before what is shown, lines of the same
  // millisecond included; within the page, in its own order.
  const target = b.type === "chathistory" && b.target ? buffer(b.target, false) : null;
  const older = target && target.oldest ? { before: target.oldest } : null;
  for (const line of b.lines) onMessage(line, true, older);
  if (b.type === "chathistory" && b.target) {
    const buf = buffer(b.target);
    if (b.lines.length < HISTORY_PAGE) buf.historyDone = true;
    if (buf === state.current) renderOlderButton();
  }
}

function onMessage(m, history, older) {
  const [target, textIn = ""] = m.params;
  const from = nickOf(m.source);
  if (!m.source || !from.length || (!m.source.includes("!") && !isChannel(target) && m.command === "NOTICE" && !state.registered)) {
    show(SERVER, { time: m.tags.time, kind: "notice", text: textIn });
    return;
  }
  const mine = fold(from) === fold(state.nick);
  let name = isChannel(target) ? target : (mine ? target : from);
  if (!m.source.includes("!") && !isChannel(target)) name = SERVER;
  const b = buffer(name);
  if (m.tags.msgid) {
    if (b.msgids.has(m.tags.msgid)) return;
    b.msgids.add(m.tags.msgid);
  }
  let text = textIn;
  let kind = m.command === "NOTICE" ? "notice" : "message";
  const ctcp = /^\x01(\S+) ?(.*?)\x01?$/.exec(text);
  if (ctcp) {
    if (ctcp[1] !== "ACTION") return;
    kind = "action";
    text = ctcp[2];
  }
  const l = { time: m.tags.time, kind, nick: from, text, history, msgid: m.tags.msgid };
  if (older && new Date(m.tags.time) <= older.before) l.older = older;
  show(name, l);
}

function onJoin(m) {
  const nick = nickOf(m.source);
  const chan = m.params[0];
  const b = buffer(chan);
  if (fold(nick) === fold(state.nick)) {
    b.joined = true;
    b.members.clear();
    if (!state.channels.some((c) => fold(c) === b.key)) state.channels.push(chan);
    if (!state.current || state.current.name === SERVER || state.switchTo === b.key) switchTo(b);
    state.switchTo = null;
    if (state.caps.has("draft/chathistory") && !b.lines.some((l) => l.kind === "message")) {
      send("CHATHISTORY LATEST " + chan + " * " + HISTORY_PAGE);
    }
  }
  b.members.set(fold(nick), { nick, modes: "" });
  show(chan, { time: m.tags.time, kind: "event", text: nick + " joined" });
  if (b === state.current) renderMembers();
}

function onPart(m, nick, chan, reason) {
  const b = buffer(chan);
  b.members.delete(fold(nick));
  show(chan, { time: m.tags.time, kind: "event", text: nick + " left" + (reason ? " (" + reason + ")" : "") });
  if (fold(nick) === fold(state.nick)) {
    b.joined = false;
    b.members.clear();
    state.channels = state.channels.filter((c) => fold(c) !== b.key);
  }
  if (b === state.current) renderMembers();
}

function onQuit(m) {
  const nick = nickOf(m.source);
  for (const b of state.buffers.values()) {
    if (b.members.delete(fold(nick)) || (b.key === fold(nick))) {
      show(b.name, { time: m.tags.time, kind: "event", text: nick + " quit" + (m.params[0] ? " (" + m.params[0] + ")" : "") });
    }
  }
  renderMembers();
}

function onNick(m) {
  const old = nickOf(m.source);
  const nick = m.params[0];
  if (fold(old) === fold(state.nick)) {
    state.nick = nick;
    state.wantedNick = nick;
    setStatus("Connected as " + nick);
  }
  for (const b of state.buffers.values()) {
    const member = b.members.get(fold(old));
    if (member) {
      b.members.delete(fold(old));
      b.members.set(fold(nick), { nick, modes: member.modes });
      show(b.name, { time: m.tags.time, kind: "event", text: old + " is now known as " + nick });
    }
  }
  renameQuery(old, nick, m.tags.time);
  renderMembers();
}

// A private conversation follows its peer's new nick: the same tab, renamed
// in place (merged into the new nick's tab if one is open already).
function renameQuery(old, nick, time) {
  const from = state.buffers.get(fold(old));
  if (!from || isChannel(old) || from.name === SERVER) return;
  if (fold(old) === fold(nick)) {
    from.name = nick;
    if (state.current === from) $("buffer-title").textContent = nick;
    renderBufferList();
    return;
  }
  const into = state.buffers.get(fold(nick));
  if (into) {
    for (const l of from.lines) if (!into.lines.includes(l)) into.lines.push(l);
    into.lines.sort((x, y) => x.date - y.date);
    for (const id of from.msgids) into.msgids.add(id);
    into.unread ||= from.unread;
    state.buffers.delete(from.key);
    if (state.current === from) state.current = into;
  } else {
    // Rebuilt rather than deleted and set again: the tab keeps its place.
    state.buffers = new Map([...state.buffers].map(([k, b]) =>
      (b === from ? [fold(nick), b] : [k, b])));
    from.name = nick;
    from.key = fold(nick);
  }
  const b = state.buffers.get(fold(nick));
  show(b.name, { time, kind: "event", text: old + " is now known as " + nick });
  if (state.current === b) switchTo(b);
  else renderBufferList();
}

// --- rendering ---------------------------------------------------------------

function formatTime(d) {
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function lineElement(l) {
  const li = el("li", l.kind);
  const t = el("time", null, formatTime(l.date));
  t.dateTime = l.date.toISOString();
  t.title = l.date.toLocaleString();
  li.append(t);
  if (l.nick && l.kind !== "action") {
    li.append(nickButton(l.nick, "nick"), " ");
  }
  if (l.kind === "action") li.append(el("span", "text", "* " + l.nick + " " + l.text));
  else li.append(el("span", "text", l.text));
  return li;
}

function nickButton(nick, cls) {
  const b = el("button", cls, nick);
  b.type = "button";
  b.title = "Private conversation with " + nick;
  b.addEventListener("click", () => openQuery(nick));
  return b;
}

// Adds a line to a buffer, in time order (history arrives older than what
// is shown).
function show(name, l) {
  const b = buffer(name);
  l.date = l.time ? new Date(l.time) : new Date();
  if (isNaN(l.date)) l.date = new Date();
  let i = b.lines.length;
  const after = (x) => x.date > l.date ||
    (l.older && x.older !== l.older && x.date.getTime() === l.date.getTime());
  while (i > 0 && after(b.lines[i - 1])) i--;
  b.lines.splice(i, 0, l);
  if (l.kind === "message" || l.kind === "action" || l.kind === "notice") {
    if (!b.oldest || l.date < b.oldest) b.oldest = l.date;
  }
  if (b.lines.length > 2000) b.lines.splice(0, b.lines.length - 2000);
  if (b === state.current) {
    const log = $("log");
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const node = lineElement(l);
    const next = b.lines[i + 1] ? log.children[i] : null;
    log.insertBefore(node, next || null);
    if (atBottom && !l.history) log.scrollTop = log.scrollHeight;
  } else if (!l.history && l.kind !== "event") {
    b.unread = true;
    renderBufferList();
  }
}

function renderBufferList() {
  const list = $("buffer-list");
  list.replaceChildren();
  for (const b of state.buffers.values()) {
    const li = el("li");
    const btn = el("button", b.unread ? "unread" : "", b.name === SERVER ? "Server" : b.name);
    btn.type = "button";
    btn.dataset.buffer = b.key;
    if (b === state.current) btn.setAttribute("aria-current", "true");
    if (b.unread) btn.setAttribute("aria-label", btn.textContent + ", unread messages");
    btn.addEventListener("click", () => { switchTo(b); closeLists(); $("input").focus(); });
    li.append(btn);
    list.append(li);
  }
}

function renderMembers() {
  const list = $("member-list");
  list.replaceChildren();
  const b = state.current;
  if (!b) return;
  const members = [...b.members.values()].sort((x, y) =>
    (y.modes.includes("@") - x.modes.includes("@")) || fold(x.nick).localeCompare(fold(y.nick)));
  for (const mb of members) {
    const li = el("li");
    const cls = mb.modes.includes("@") ? "op" : mb.modes.includes("+") ? "voice" : "";
    li.append(nickButton(mb.nick, cls));
    list.append(li);
  }
  $("members-title").textContent = isChannel(b.name) ? "Members (" + members.length + ")" : "Members";
}

function renderChannelList() {
  const list = $("channel-list");
  list.replaceChildren();
  for (const c of state.listing) {
    const li = el("li");
    const btn = el("button", null, c.name + " ");
    btn.type = "button";
    btn.append(el("span", "count", "(" + c.users + ")"));
    if (c.topic) btn.append(el("span", "topic", c.topic));
    btn.addEventListener("click", () => joinChannel(c.name));
    li.append(btn);
    list.append(li);
  }
}

function renderOlderButton() {
  const b = state.current;
  $("older").hidden = !(b && isChannel(b.name) && state.caps.has("draft/chathistory") && !b.historyDone);
}

function switchTo(b) {
  state.current = b;
  b.unread = false;
  $("buffer-title").textContent = b.name === SERVER ? "Server" : b.name;
  $("topic").textContent = b.topic;
  const log = $("log");
  log.replaceChildren(...b.lines.map(lineElement));
  log.scrollTop = log.scrollHeight;
  renderBufferList();
  renderMembers();
  renderOlderButton();
}

function openQuery(nick) {
  if (fold(nick) === fold(state.nick)) return;
  switchTo(buffer(nick));
  closeLists();
  $("input").focus();
}

function joinChannel(name) {
  if (!isChannel(name)) name = "#" + name;
  const b = state.buffers.get(fold(name));
  if (b && b.joined) { switchTo(b); closeLists(); return; }
  state.switchTo = fold(name);
  send("JOIN " + clean(name));
  closeLists();
}

function requestList() { send("LIST"); }

function showChat() {
  $("login").hidden = true;
  $("chat").hidden = false;
  if (!state.current) switchTo(buffer(SERVER));
  if (document.activeElement === document.body || !document.activeElement || $("login").contains(document.activeElement)) {
    $("input").focus();
  }
}

function closeLists() {
  document.body.classList.remove("show-lists");
  $("lists-toggle").setAttribute("aria-expanded", "false");
}

// --- what the user types -----------------------------------------------------

function say(target, text) {
  for (const part of text.split(/\r?\n/)) {
    if (!part) continue;
    send("PRIVMSG " + target + " :" + part);
    if (!state.caps.has("echo-message")) {
      show(target, { kind: "message", nick: state.nick, text: part });
    }
  }
}

function command(input) {
  const b = state.current;
  const here = b && b.name !== SERVER ? b.name : null;
  if (!input.startsWith("/") || input.startsWith("//")) {
    const text = input.startsWith("//") ? input.slice(1) : input;
    if (!here) { show(SERVER, { kind: "error-line", text: "Join a channel or open a conversation first (/join #lobby)." }); return; }
    say(here, clean(text));
    return;
  }
  const [, verb, rest = ""] = /^\/(\S+)\s*(.*)$/.exec(input) || [];
  const args = rest.split(/\s+/).filter(Boolean);
  switch ((verb || "").toLowerCase()) {
    case "join": case "j":
      if (args[0]) joinChannel(args[0]);
      break;
    case "part": case "leave": {
      const chan = args[0] && isChannel(args[0]) ? args.shift() : here;
      if (chan) send("PART " + clean(chan) + (args.length ? " :" + clean(args.join(" ")) : ""));
      break;
    }
    case "msg": case "query": {
      const target = args.shift();
      if (!target) break;
      if (!isChannel(target)) openQuery(target);
      const text = rest.slice(rest.indexOf(target) + target.length).trim();
      if (text) say(clean(target), clean(text));
      break;
    }
    case "nick":
      if (args[0]) send("NICK " + clean(args[0]));
      break;
    case "me":
      if (here) {
        send("PRIVMSG " + here + " :\x01ACTION " + clean(rest) + "\x01");
        if (!state.caps.has("echo-message")) show(here, { kind: "action", nick: state.nick, text: rest });
      }
      break;
    case "topic":
      if (here) send("TOPIC " + here + (rest ? " :" + clean(rest) : ""));
      break;
    case "list": requestList(); break;
    case "quit":
      state.quitting = true;
      send("QUIT :" + clean(rest || "bye"));
      break;
    case "quote": case "raw":
      send(clean(rest));
      break;
    default:
      show(b ? b.name : SERVER, { kind: "error-line",
        text: "Unknown command /" + verb + ". Try /join, /part, /msg, /nick, /me, /topic, /list, /quote." });
  }
}

// --- wiring --------------------------------------------------------------------

function cycleBuffer(step) {
  const all = [...state.buffers.values()];
  if (!all.length) return;
  const i = all.indexOf(state.current);
  switchTo(all[(i + step + all.length) % all.length]);
}

document.addEventListener("DOMContentLoaded", () => {
  $("nick").value = localStorage.getItem("bavard.nick") || "";
  const saved = localStorage.getItem("bavard.channels");
  if (saved) $("channels").value = saved;
  $("nick").focus();

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const nick = $("nick").value.trim().replace(/\s+/g, "_");
    if (!nick) return;
    state.wantedNick = nick;
    state.account = $("account").value.trim();
    state.password = $("password").value;
    state.channels = $("channels").value.split(",").map((c) => c.trim()).filter(Boolean)
      .map((c) => (isChannel(c) ? c : "#" + c));
    try {
      localStorage.setItem("bavard.nick", nick);
      localStorage.setItem("bavard.channels", state.channels.join(","));
    } catch (e) { /* private mode */ }
    $("login-error").textContent = "";
    state.retries = 0;
    connect();
  });

  $("send-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("input");
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    command(text);
  });

  $("join-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("join-name").value.trim();
    if (name) joinChannel(name);
    $("join-name").value = "";
  });

  $("list-refresh").addEventListener("click", requestList);

  $("older").addEventListener("click", () => {
    const b = state.current;
    if (!b || !b.oldest) return;
    // Before the first message shown, by its id when it has one: several
    // messages may share its millisecond, and a timestamp would skip them.
    const first = b.lines.find((l) => l.msgid && l.kind !== "event" && l.kind !== "error-line");
    const ref = first ? "msgid=" + first.msgid : "timestamp=" + b.oldest.toISOString();
    send("CHATHISTORY BEFORE " + b.name + " " + ref + " " + HISTORY_PAGE);
  });

  $("lists-toggle").addEventListener("click", () => {
    const open = document.body.classList.toggle("show-lists");
    $("lists-toggle").setAttribute("aria-expanded", String(open));
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.altKey && (ev.key === "ArrowUp" || ev.key === "ArrowDown")) {
      ev.preventDefault();
      cycleBuffer(ev.key === "ArrowUp" ? -1 : 1);
    } else if (ev.key === "Escape") {
      closeLists();
    }
  });
});
