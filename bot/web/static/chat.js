// councilbot web chat. Renders every string with textContent (never HTML),
// announces new messages through the log's aria-live region, and keeps
// keyboard focus where a keyboard user expects it.
(function () {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const box = document.getElementById("message");
  const sendButton = document.getElementById("send");
  const status = document.getElementById("status");
  const shown = new Set();
  let lastId = 0;
  let stream = null;

  function say(text, isError) {
    status.textContent = text || "";
    status.classList.toggle("error", Boolean(isError));
  }

  function render(message) {
    if (shown.has(message.id)) return;
    shown.add(message.id);
    lastId = Math.max(lastId, message.id);
    const item = document.createElement("li");
    item.className = "message " + message.role;
    item.dataset.id = String(message.id);
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = message.role === "resident" ? "You" : message.role === "officer" ? "Council officer" : "Council assistant";
    item.appendChild(who);
    for (const paragraph of String(message.text).split(/\n{2,}/)) {
      const p = document.createElement("p");
      p.textContent = paragraph;
      item.appendChild(p);
    }
    if (message.options && message.options.length) {
      const list = document.createElement("ul");
      list.className = "options";
      list.setAttribute("aria-label", "Choices");
      for (const option of message.options) {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = option.label;
        button.addEventListener("click", function () { send(option.label, option.id); });
        li.appendChild(button);
        list.appendChild(li);
      }
      item.appendChild(list);
    }
    // Keep the conversation in order even when a pushed reply arrives before
    // the response that carries the question it answers.
    let next = null;
    for (const existing of log.children) {
      if (Number(existing.dataset.id) > message.id) { next = existing; break; }
    }
    log.insertBefore(item, next);
    item.scrollIntoView({ block: "nearest" });
  }

  async function send(text, choice) {
    if (!text.trim() && !choice) {
      say("Please type a message first.", true);
      box.focus();
      return;
    }
    sendButton.disabled = true;
    say("Sending…");
    try {
      const id = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random();
      const response = await fetch("/api/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ text: text, choice: choice || "", id: id }),
      });
      const data = await response.json().catch(function () { return {}; });
      if (!response.ok) {
        say(data.error || "Sorry, something went wrong. Please try again.", true);
        return;
      }
      if (data.sent) render(data.sent);
      for (const message of data.messages || []) render(message);
      if (!choice) box.value = "";
      say("");
      connect();
    } catch (error) {
      say("You seem to be offline. Please check your connection and try again.", true);
    } finally {
      sendButton.disabled = false;
      box.focus();
    }
  }

  function connect() {
    if (stream || !window.EventSource) return;
    stream = new EventSource("/api/events?after=" + lastId);
    stream.addEventListener("message", function (event) {
      try { render(JSON.parse(event.data)); } catch (error) { /* ignore a malformed event */ }
    });
    stream.onerror = function () {
      if (stream && stream.readyState === EventSource.CLOSED) { stream = null; }
    };
  }

  async function restore() {
    try {
      const response = await fetch("/api/messages?after=0", { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      for (const message of data.messages || []) render(message);
      if ((data.messages || []).length) connect();
    } catch (error) { /* first visit or offline: nothing to restore */ }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(box.value, "");
  });
  box.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send(box.value, "");
    }
  });
  restore();
})();
