// councilbot widget: add the council's chat to any page with
//   <script src="https://chat.example.gov.uk/widget.js" defer></script>
// It adds a "Chat with us" button that opens the chat in a framed panel.
// No third-party requests; the frame is served by councilbot itself.
(function () {
  "use strict";
  var base = __COUNCILBOT_URL__;
  if (document.getElementById("councilbot-launcher")) return;
  var button = document.createElement("button");
  button.id = "councilbot-launcher";
  button.type = "button";
  button.textContent = "Chat with us";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "councilbot-panel");
  button.style.cssText = "position:fixed;right:1rem;bottom:1rem;z-index:2147483000;font:600 1rem/1.2 system-ui,sans-serif;" +
    "padding:0.75rem 1rem;min-height:44px;background:#1d4f91;color:#fff;border:2px solid #fff;border-radius:0.25rem;cursor:pointer";
  var panel = document.createElement("div");
  panel.id = "councilbot-panel";
  panel.hidden = true;
  panel.style.cssText = "position:fixed;right:1rem;bottom:4.5rem;z-index:2147483000;width:min(26rem,calc(100vw - 2rem));" +
    "height:min(40rem,calc(100vh - 6rem));background:#fff;border:2px solid #0b0c0c;box-shadow:0 2px 12px rgba(0,0,0,.3)";
  var frame = document.createElement("iframe");
  frame.title = "Chat with the council";
  frame.style.cssText = "width:100%;height:100%;border:0";
  panel.appendChild(frame);
  button.addEventListener("click", function () {
    var open = panel.hidden;
    if (open && !frame.src) frame.src = base + "/embed";
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) frame.focus();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !panel.hidden) {
      panel.hidden = true;
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  });
  document.body.appendChild(panel);
  document.body.appendChild(button);
})();
