// waxmpp setup: keeps the page current without reloading for every QR
// code. Without JavaScript the waiting pages refresh themselves.
"use strict";
(function () {
  var body = document.body;
  var version = body.dataset.version;
  var step = body.dataset.step;

  // The time left of the code shown, counted down in place.
  var left = document.getElementById("left");
  var secs = left ? parseInt(left.dataset.left, 10) || 0 : 0;
  if (left) {
    setInterval(function () {
      if (secs > 0) { secs--; left.textContent = String(secs); }
    }, 1000);
  }

  // A form sent once: its buttons stop taking clicks.
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function () {
      f.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    });
  });

  // Long poll: the server answers at the next change. A new QR code (or
  // link code) is swapped in; any other change reloads the page.
  function poll() {
    fetch("/state?v=" + encodeURIComponent(version), { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { location.reload(); return null; }
        return r.json();
      })
      .then(function (s) {
        if (!s) { return; }
        if (String(s.version) === version) { poll(); return; }
        var qr = document.getElementById("qr");
        var code = document.getElementById("code");
        if (s.step === step && s.pair_n && body.dataset.pairN && !s.busy && !s.problem && (qr || code)) {
          version = String(s.version);
          body.dataset.pairN = String(s.pair_n);
          if (qr) { qr.src = "/qr.png?n=" + s.pair_n; }
          if (code && s.pair_code) { code.textContent = s.pair_code; }
          var n = document.getElementById("qr-n");
          if (n) { n.textContent = String(s.pair_n); }
          secs = s.expires_in || 0;
          if (left) { left.textContent = String(secs); }
          poll();
          return;
        }
        location.reload();
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  if (step !== "done") { poll(); }
})();
