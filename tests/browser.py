"""Open planner's HTML maps in Debian's headless Chromium with no network (test helper).

No extra Python packages: a small script injected at the top of <head> records JavaScript
errors and, after load, writes a JSON summary into ``<pre id="planner-test-result">``;
Chromium's ``--dump-dom`` prints the DOM, and the JSON is read back from it. A second run
takes the screenshot of the unmodified page.

Network is cut three ways: every host name resolves to nothing, a proxy to a closed port
catches the rest, and background services are off. A map that needs a CDN fails here, as
it would on an intranet.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
SKIP_REASON = "Debian chromium not installed (.ci/run installs it)"

_RESULT_ID = "planner-test-result"

# Runs before any other script on the page.
_PROBE = """<script>
(function () {
  var errors = [], dialogs = [];
  // A script injected through data would most likely show itself with one of these.
  ['alert', 'prompt', 'confirm', 'print'].forEach(function (name) {
    window[name] = function (message) { dialogs.push(name + '(' + String(message) + ')'); return null; };
  });
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      errors.push('failed to load ' + (t.src || t.href));
    } else {
      var where = e.filename ? ' @' + e.filename + ':' + e.lineno : '';
      errors.push(String(e.message || e.type) + where);
    }
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    errors.push('unhandled rejection: ' + String(e.reason));
  });
  var consoleError = console.error;
  console.error = function () {
    errors.push('console.error: ' + Array.prototype.map.call(arguments, String).join(' '));
    return consoleError.apply(console, arguments);
  };
  function report() {
    var maps = plannerMaps(), paths = 0;
    if (window.L) {
      // Vector layers on the map: SVG paths or shapes drawn on a canvas alike.
      maps.forEach(function (m) {
        m.eachLayer(function (l) { if (l instanceof L.Path) paths++; });
      });
    }
    var dom = document.querySelectorAll(
      '.leaflet-overlay-pane path, .leaflet-marker-pane *').length;
    var labels = document.querySelectorAll(
      '.leaflet-control-layers-base label, .leaflet-control-layers-overlays label');
    var external = [];
    (performance.getEntriesByType('resource') || []).forEach(function (r) {
      if (!/^(data|blob|file|about):/.test(r.name)) external.push(r.name);
    });
    var extra = null;
    if (window.__plannerExtra) {
      try { extra = window.__plannerExtra(maps); } catch (err) { errors.push('extra: ' + err); }
    }
    // Navigation start to the end of the load event (parsing and every page script), ms.
    var nav = performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
    var result = {
      load_ms: nav ? Math.round(nav.loadEventEnd) : null,
      extra: extra,
      errors: errors,
      dialogs: dialogs,
      paths: Math.max(paths, dom),
      layers: labels.length,
      layer_names: Array.prototype.map.call(labels, function (x) { return x.textContent.trim(); }),
      maps: maps.length,
      leaflet: window.L ? L.version : null,
      external: external
    };
    var pre = document.createElement('pre');
    pre.id = 'RESULT_ID';
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
  }
  window.addEventListener('load', function () {
    if (window.__plannerPrepare) {
      try { window.__plannerPrepare(plannerMaps()); } catch (err) { errors.push('prepare: ' + err); }
    }
    setTimeout(report, 1000);
  });
  function plannerMaps() {
    var maps = [];
    if (window.L) {
      for (var k in window) {
        try { if (window[k] instanceof L.Map) maps.push(window[k]); } catch (err) {}
      }
    }
    return maps;
  }
})();
</script>""".replace("RESULT_ID", _RESULT_ID)


def chromium_available() -> bool:
    """True if Debian's Chromium is installed and runs."""
    exe = _executable()
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "chromium" in out.stdout.lower()


def open_in_browser(
    html_path: str | os.PathLike,
    screenshot_path: str | os.PathLike | None = None,
    timeout_s: float = 30,
    extra_js: str | None = None,
    prepare_js: str | None = None,
) -> dict:
    """Load an HTML file in headless Chromium without network and report what happened.

    Parameters
    ----------
    html_path : path
        The page (e.g. a map written by ``planner.maps.save_map``).
    screenshot_path : path, optional
        Where to write a 1200×900 PNG of the page as loaded.
    timeout_s : float
        Limit for each Chromium run.
    extra_js : str, optional
        Body of a JavaScript function of ``maps`` (the page's ``L.Map`` objects) run after
        load; its JSON-able return value is ``result["extra"]`` (e.g. open a popup and
        return its text).
    prepare_js : str, optional
        Body of a JavaScript function of ``maps`` run as soon as the page has loaded, a second
        before ``extra_js``, so that what it starts (e.g. images of an opened popup) has
        happened when the result is taken.

    Returns
    -------
    dict
        ``errors`` (JavaScript errors, failed loads, console.error), ``paths`` (vector
        features drawn), ``layers`` (entries in the layer control), ``layer_names``,
        ``external`` (URLs the page tried to fetch), ``leaflet`` (version or None),
        ``load_ms`` (navigation start to the end of the load event: parsing and the page's
        scripts, in real milliseconds), ``extra`` (see ``extra_js``), ``dialogs`` (calls of
        ``alert``, ``prompt``, ``confirm`` or ``print``, which the page cannot make: they are
        replaced before its first script), ``screenshot`` (path or None).
    """
    exe = _executable()
    if exe is None:
        raise RuntimeError(SKIP_REASON)
    page = Path(html_path).resolve()
    text = page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="planner-chromium-") as tmp:
        probe = Path(tmp) / page.name
        probe.write_text(_inject(text, extra_js, prepare_js), encoding="utf-8")
        dom = _run(exe, tmp, ["--dump-dom", probe.as_uri()], timeout_s)
        found = re.search(rf'<pre id="{_RESULT_ID}">(.*?)</pre>', dom, re.S)
        if not found:
            raise RuntimeError(f"no result from Chromium for {page}; DOM starts {dom[:300]!r}")
        result = json.loads(html.unescape(found.group(1)))
        result["screenshot"] = None
        if screenshot_path is not None:
            shot = Path(screenshot_path).resolve()
            shot.parent.mkdir(parents=True, exist_ok=True)
            _run(
                exe,
                tmp,
                [f"--screenshot={shot}", "--window-size=1200,900", "--hide-scrollbars", page.as_uri()],
                timeout_s,
            )
            if not shot.exists():
                raise RuntimeError(f"Chromium wrote no screenshot {shot}")
            result["screenshot"] = str(shot)
    return result


def _executable() -> str | None:
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def _inject(text: str, extra_js: str | None = None, prepare_js: str | None = None) -> str:
    probe = _PROBE
    if prepare_js:
        probe += f"<script>window.__plannerPrepare = function (maps) {{\n{prepare_js}\n}};</script>"
    if extra_js:
        probe += f"<script>window.__plannerExtra = function (maps) {{\n{extra_js}\n}};</script>"
    head = re.search(r"<head[^>]*>", text, re.I)
    if head:
        return text[: head.end()] + probe + text[head.end() :]
    return probe + text


def _run(exe: str, tmp: str, args: list[str], timeout_s: float) -> str:
    profile = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--mute-audio",
        f"--user-data-dir={profile}",
        # No network: names resolve to nothing and anything else goes to a closed port.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--allow-file-access-from-files",
        "--virtual-time-budget=10000",
        *args,
    ]
    # Own process group so a hung Chromium and its helpers can be ended together.
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"Chromium did not finish in {timeout_s} s: {' '.join(args)}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"Chromium failed ({proc.returncode}): {err[-2000:]}")
    return out
