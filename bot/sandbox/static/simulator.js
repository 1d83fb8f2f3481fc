// 聊天模拟器: pick a person, chat through the real webhook, watch the pushes the fake WeChat server receives.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const app = $("app");
  const state = {
    people: [],          // from /simulator/api/people (the 新用户 entry last)
    current: null,       // openid
    events: [],          // every event seen, in id order
    seen: new Set(),
    last: 0,
    unread: {},          // openid → count
    feedUnread: 0,
    busy: false,
    menu: null,
  };

  // Example commands per role: a click puts one in the input box (it is not sent on its own).
  const SUGGEST = {
    admin: ["帮助", "待派单", "派单 BX1 李师傅", "报修统计 本月", "提醒 明天8:00 检查消防通道 @门卫", "值班表"],
    leader: ["帮助", "值班", "值班表", "报修统计 本月", "提醒 周五 14:00 行政会 @领导"],
    head_teacher: ["帮助", "待审批", "今日请假", "批准 QJ1"],
    teacher: ["帮助", "报修 教学楼301 灯不亮", "报修 紧急 三楼卫生间 水管漏水", "报修", "我的报修",
      "请假 七(1)班 王小明 明天全天 发烧", "预约 张三 13800138000 明天10:00 送教材", "提醒 10分钟后 交教案"],
    guard: ["帮助", "访客 张三 13800138000 送文件 找张老师", "在校访客", "今日请假", "核验 王小明", "值班"],
    worker: ["帮助", "我的任务"],  // and the worker's real open tickets (person.suggest)
    parent: ["帮助", "请假 王小明 明天全天 发烧", "我的信息"],
    none: ["帮助"],
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function colorOf(name) {
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
    return `hsl(${h}, 45%, 52%)`;
  }

  function avatar(name, cls) {
    const a = el("div", "avatar" + (cls ? " " + cls : ""), cls === "bot" ? "后" : name.slice(0, 1));
    if (cls !== "bot") a.style.background = colorOf(name);
    return a;
  }

  function personOf(openid) {
    return state.people.find((p) => p.openid === openid);
  }

  // The per-run token from the address houqin demo printed (…/simulator?token=…), sent with every call.
  const TOKEN = new URLSearchParams(window.location.search).get("token") || "";

  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({"X-Simulator-Token": TOKEN}, opts.headers || {});
    const resp = await fetch(path, opts);
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) throw new Error((body && body.error) || `HTTP ${resp.status}`);
    return body;
  }

  // --- people ---
  async function loadPeople() {
    const data = await api("/simulator/api/people");
    state.people = data.people.concat(data.newcomers || (data.newcomer ? [data.newcomer] : []));
    state.defaultMenu = data.menu;
    $("mode-tag").textContent = data.safe_mode ? "安全模式（加密）" : "明文模式";
    renderPeople();
    syncMenu();
    // (after 绑定 the 新用户's OpenID belongs to a person: the same chat simply gets their name)
    if (state.current && !personOf(state.current)) select(null);
    else if (state.current) { renderHead(); renderSuggestions(); }
  }

  function renderPeople() {
    const list = $("people-list");
    list.textContent = "";
    for (const p of state.people) {
      const b = el("button", "person" + (p.openid === state.current ? " active" : ""));
      b.type = "button";
      b.dataset.openid = p.openid;
      b.dataset.name = p.name;
      b.setAttribute("role", "listitem");
      b.appendChild(avatar(p.name));
      const meta = el("div", "meta");
      meta.appendChild(el("div", "name", p.name));
      meta.appendChild(el("div", "roles", p.detail ? `${p.roles} · ${p.detail}` : p.roles));
      b.appendChild(meta);
      const n = state.unread[p.openid] || 0;
      if (n) b.appendChild(el("span", "badge", String(n)));
      b.addEventListener("click", () => { select(p.openid); closeDrawers(); });
      list.appendChild(b);
    }
  }

  function renderHead() {
    const p = personOf(state.current);
    $("who-name").textContent = p ? p.name : "请选择身份";
    $("who-roles").textContent = p ? (p.detail ? `${p.roles} · ${p.detail}` : p.roles)
      : "从名单中选一个人，以他的身份和公众号聊天";
  }

  // The menu WeChat shows the person chatting (their role's conditional menu), from /simulator/api/people.
  function syncMenu() {
    const p = personOf(state.current);
    const menu = p && p.menu !== undefined ? p.menu : state.defaultMenu;
    if (JSON.stringify(menu) !== JSON.stringify(state.menu)) {
      state.menu = menu;
      renderMenu();
    }
  }

  async function newUser() {
    try {
      const data = await api("/simulator/api/newcomer", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
      });
      await loadPeople();
      await poll(false);
      select(data.openid);
      closeDrawers();
    } catch (e) {
      alert("无法创建新用户：" + e.message);
    }
  }

  function select(openid) {
    state.current = openid;
    if (openid) {
      localStorage.setItem("houqin.sim.openid", openid);
      state.unread[openid] = 0;
    }
    const on = Boolean(openid);
    $("text").disabled = !on;
    $("send-btn").disabled = !on;
    renderHead();
    renderPeople();
    renderSuggestions();
    renderMessages();
    syncMenu();
    if (on && window.matchMedia("(min-width: 761px)").matches) $("text").focus();
  }

  function renderSuggestions() {
    const box = $("suggest");
    box.textContent = "";
    const p = personOf(state.current);
    if (!p) return;
    const keys = p.role_keys.length ? p.role_keys : ["none"];
    const seen = new Set();
    for (const s of p.suggest || []) {  // from this person's own records (a worker's open tickets …)
      seen.add(s);
      const c = el("button", "chip real", s);
      c.type = "button";
      c.addEventListener("click", () => { $("text").value = s; $("text").focus(); });
      box.appendChild(c);
    }
    for (const k of ["admin", "leader", "head_teacher", "teacher", "guard", "worker", "parent", "none"]) {
      if (!keys.includes(k)) continue;
      for (const s of SUGGEST[k]) {
        if (seen.has(s)) continue;
        seen.add(s);
        const c = el("button", "chip", s);
        c.type = "button";
        c.addEventListener("click", () => { $("text").value = s; $("text").focus(); });
        box.appendChild(c);
      }
    }
    if (p.detail && p.detail.startsWith("发送「绑定 ")) {
      const code = p.detail.slice(3, p.detail.indexOf("」"));
      const c = el("button", "chip", code);
      c.type = "button";
      c.addEventListener("click", () => { $("text").value = code; $("text").focus(); });
      box.prepend(c);
    }
  }

  // --- messages ---
  function renderMessages() {
    const box = $("messages");
    box.textContent = "";
    const mine = state.events.filter((e) => e.openid === state.current);
    if (!state.current) {
      box.appendChild(el("div", "empty", "选择一个身份后，发送「帮助」试试。"));
      return;
    }
    if (!mine.length) {
      box.appendChild(el("div", "empty", "还没有消息。发送「帮助」看看这个身份能做什么。"));
    }
    box.lastStamp = null;
    for (const e of mine) appendMessage(e, false);
    box.scrollTop = box.scrollHeight;
  }

  function appendMessage(e, scroll) {
    const box = $("messages");
    const empty = box.querySelector(".empty");
    if (empty) empty.remove();
    const stamp = e.time.slice(0, 5);
    if (box.lastStamp !== stamp) {
      box.appendChild(el("div", "stamp", stamp));
      box.lastStamp = stamp;
    }
    const p = personOf(e.openid);
    const name = p ? p.name : "我";
    let node;
    if (e.kind === "in") {
      node = el("div", "row mine");
      node.appendChild(avatar(name));
      const b = el("div", "bubble" + (e.type === "image" ? " image" : ""));
      if (e.type === "image" && e.media) {
        const img = document.createElement("img");
        img.src = e.media;
        img.alt = "图片";
        b.appendChild(img);
      } else {
        b.textContent = e.text;
      }
      node.appendChild(b);
    } else if (e.kind === "reply") {
      node = el("div", "row bot");
      node.appendChild(avatar("", "bot"));
      node.appendChild(e.text ? el("div", "bubble reply", e.text) : el("div", "bubble quiet", "（公众号没有回复）"));
    } else if (e.kind === "push") {
      node = el("div", "row bot push");
      node.appendChild(avatar("", "bot"));
      const card = el("div", "card");
      const head = el("div", "card-head");
      head.appendChild(el("span", "", e.channel === "template" ? "模板消息" : "客服消息"));
      head.appendChild(el("span", "", e.time));
      card.appendChild(head);
      card.appendChild(el("div", "card-body", e.text));
      node.appendChild(card);
    } else {
      node = el("div", "note-error", e.text);
    }
    node.dataset.kind = e.kind;
    box.appendChild(node);
    if (scroll !== false) box.scrollTop = box.scrollHeight;
  }

  function addFeed(e, fresh) {
    const list = $("feed-list");
    const empty = $("feed-empty");
    if (empty) empty.remove();
    const item = el("button", "feed-item" + (fresh ? " fresh" : ""));
    item.type = "button";
    const head = el("div", "fi-head");
    const to = el("span", "");
    to.appendChild(document.createTextNode("→ "));
    to.appendChild(el("span", "fi-to", e.to_name || e.openid));
    head.appendChild(to);
    const right = el("span", "");
    right.appendChild(el("span", "tag " + e.channel, e.channel === "template" ? "模板" : "客服"));
    right.appendChild(document.createTextNode(" " + e.time));
    head.appendChild(right);
    item.appendChild(head);
    item.appendChild(el("div", "fi-text", e.text));
    item.addEventListener("click", () => { if (personOf(e.openid)) { select(e.openid); closeDrawers(); } });
    list.prepend(item);
  }

  function absorb(events, initial) {
    let touched = false;
    for (const e of events) {
      if (state.seen.has(e.id)) continue;
      state.seen.add(e.id);
      state.events.push(e);
      state.last = Math.max(state.last, e.id);
      if (e.openid === state.current) {
        appendMessage(e);
      } else if (!initial && e.kind !== "in") {
        state.unread[e.openid] = (state.unread[e.openid] || 0) + 1;
        touched = true;
      }
      if (e.kind === "push") {
        addFeed(e, !initial);
        if (!initial && !app.classList.contains("show-feed")) state.feedUnread += 1;
      }
    }
    state.events.sort((a, b) => a.id - b.id);
    const fb = $("feed-badge");
    fb.textContent = String(state.feedUnread);
    fb.hidden = !state.feedUnread;
    if (touched) renderPeople();
  }

  async function poll(initial) {
    try {
      const data = await api(`/simulator/api/events?after=${state.last}`);
      absorb(data.events, initial);
    } catch (e) {
      // the server restarted or is busy: try again on the next tick
    }
  }

  async function send(body) {
    if (!state.current || state.busy) return;
    state.busy = true;
    $("send-btn").disabled = true;
    $("typing").hidden = false;
    try {
      const data = await api("/simulator/api/send", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ openid: state.current }, body)),
      });
      absorb([data.sent, data.answer], false);
      if (body.type === "text" && /^\s*绑定/.test(body.text || "")) await loadPeople();
    } catch (e) {
      appendMessage({ id: 0, openid: state.current, kind: "error", text: "发送失败：" + e.message,
        time: new Date().toTimeString().slice(0, 8) });
    } finally {
      state.busy = false;
      $("send-btn").disabled = !state.current;
      $("typing").hidden = true;
    }
  }

  // --- the account menu ---
  function renderMenu() {
    const bar = $("menubar");
    bar.textContent = "";
    if (!state.menu || !state.menu.button) return;
    for (const top of state.menu.button) {
      const item = el("div", "menu-item");
      const btn = el("button", "menu-btn", top.name);
      btn.type = "button";
      item.appendChild(btn);
      if (top.sub_button && top.sub_button.length) {
        btn.classList.add("has-sub");
        const sub = el("div", "submenu");
        sub.hidden = true;
        for (const s of top.sub_button) {
          const sb = el("button", "", s.name);
          sb.type = "button";
          sb.addEventListener("click", () => { sub.hidden = true; click(s); });
          sub.appendChild(sb);
        }
        item.appendChild(sub);
        btn.addEventListener("click", (ev) => {
          ev.stopPropagation();
          const open = sub.hidden;
          document.querySelectorAll(".submenu").forEach((m) => { m.hidden = true; });
          sub.hidden = !open;
        });
      } else {
        btn.addEventListener("click", () => click(top));
      }
      bar.appendChild(item);
    }
  }

  function click(button) {
    if (button.type === "click" && button.key) send({ type: "click", key: button.key, label: button.name });
    else if (button.url) window.open(button.url, "_blank", "noopener");
  }

  // --- drawers on a phone ---
  function closeDrawers() {
    app.classList.remove("show-people", "show-feed");
    $("scrim").hidden = true;
  }

  function openDrawer(which) {
    app.classList.add(which);
    $("scrim").hidden = false;
    if (which === "show-feed") {
      state.feedUnread = 0;
      $("feed-badge").hidden = true;
    }
  }

  // --- wiring ---
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("text");
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    send({ type: "text", text });
  });
  $("photo-btn").addEventListener("click", () => {
    if (!state.current) return;
    $("photo-input").click();
  });
  $("photo-input").addEventListener("change", () => {
    const file = $("photo-input").files[0];
    $("photo-input").value = "";
    if (!file) return;
    if (file.size > 5 * 1024 * 1024) {
      alert("图片太大（最多5MB）");
      return;
    }
    const reader = new FileReader();
    reader.onload = () => send({ type: "image", image: reader.result });
    reader.readAsDataURL(file);
  });
  $("new-user").addEventListener("click", newUser);
  $("open-people").addEventListener("click", () => openDrawer("show-people"));
  $("open-feed").addEventListener("click", () => openDrawer("show-feed"));
  $("close-people").addEventListener("click", closeDrawers);
  $("close-feed").addEventListener("click", closeDrawers);
  $("scrim").addEventListener("click", closeDrawers);
  document.addEventListener("click", () => document.querySelectorAll(".submenu").forEach((m) => { m.hidden = true; }));

  // --- checkpoint QR codes: one button each sends the SCAN event a WeChat scan would (scene cp:<id>) ---
  async function loadCheckpoints() {
    const bar = $("scanbar");
    const data = await api("/simulator/api/checkpoints");
    bar.textContent = "";
    bar.hidden = !data.checkpoints.length;
    if (!data.checkpoints.length) return;
    bar.appendChild(el("span", "scan-label", "扫码："));
    for (const cp of data.checkpoints) {
      const b = el("button", "chip scan", cp.name);
      b.type = "button";
      b.title = `模拟用微信扫描「${cp.name}」（${cp.code}）的二维码`;
      b.dataset.key = cp.key;
      b.addEventListener("click", () => send({ type: "scan", key: cp.key, label: `${cp.name}（${cp.code}）` }));
      bar.appendChild(b);
    }
  }

  (async function start() {
    loadCheckpoints().catch(() => {});
    try {
      await loadPeople();
    } catch (e) {
      $("people-list").appendChild(el("div", "empty", "无法读取人员名单：" + e.message));
    }
    await poll(true);
    const saved = localStorage.getItem("houqin.sim.openid");
    const wanted = decodeURIComponent(location.hash.slice(1));
    const byName = state.people.find((p) => p.name === wanted);
    if (byName) select(byName.openid);
    else if (saved && personOf(saved)) select(saved);
    else if (window.matchMedia("(max-width: 760px)").matches) openDrawer("show-people");
    setInterval(poll, 1000);
    setInterval(() => loadPeople().catch(() => {}), 10000);
  })();
})();
