"""Self-contained, inert HTML for folium maps.

Two jobs that every map planner writes shares: the page loads nothing from the network
(Leaflet and jQuery inlined from the ``xstatic`` packages), and data never become code (every
data string escaped, and rendered output never compiled again as a Jinja template).
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import html
import re
import threading
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import branca.element
import folium

from .._io import atomic_file

# --- Data is never code ------------------------------------------------------------------------
# Bidirectional controls (embeddings, overrides, isolates) that could reorder the text around a
# name, and C0/C1 control characters other than tab and newline (NUL, escape...).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain_text(value: Any) -> str:
    """``value`` as display text that cannot disturb the text around it.

    Control characters become U+FFFD (visible, unlike a NUL a browser drops), and text with
    bidirectional controls is wrapped in a first-strong isolate (U+2068 … U+2069), so an
    RTL override in a name reverses that name only, never the labels after it.
    """
    text = _CONTROL.sub("\ufffd", str(value))
    return f"\u2068{text}\u2069" if _BIDI.search(text) else text


def escape_html(value: Any) -> str:
    """``value`` as HTML text (``plain_text``, then ``& < > " '`` escaped).

    Every string from data (OSM names and tags, plan properties, file columns, category and
    region names) that planner puts into HTML goes through this function.
    """
    return html.escape(plain_text(value), quote=True)


# Set while offline_html renders a map: see _render_as_data.
_RENDERING = contextvars.ContextVar("planner_maps_rendering", default=False)
_HOOK_LOCK = threading.Lock()
_branca_element_init = None


class _Text:
    """Stands in for a compiled Jinja template: renders to its text, unchanged."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def render(self, *args: Any, **kwargs: Any) -> str:
        return self.text


def _element_init(
    self: branca.element.Element, template: str | None = None, template_name: str | None = None
) -> None:
    # While a map renders, a string given to Element() is always rendered output: branca's
    # MacroElement.render and folium's Popup, GeoJsonTooltip/Popup and include statements
    # pass the macro's text to Element(text), which would compile it as a template again.
    if template is not None and _RENDERING.get():
        _branca_element_init(self)
        self._template = _Text(template)
    else:
        _branca_element_init(self, template, template_name)


def _install_hook() -> None:
    """Route ``branca.element.Element.__init__`` through ``_element_init`` (once per process).

    Outside ``_render_as_data`` (another thread, a user's own folium map) the hook calls
    branca's constructor unchanged: the flag is a context variable, so it is per thread.
    """
    global _branca_element_init
    with _HOOK_LOCK:
        if _branca_element_init is None:
            _branca_element_init = branca.element.Element.__init__
            branca.element.Element.__init__ = _element_init


@contextlib.contextmanager
def _render_as_data(root: branca.element.Element) -> Iterator[None]:
    """Render ``root``'s tree with every data string kept inert.

    branca renders a ``MacroElement``'s macros and hands the output, which already holds the
    data (names in a GeoJSON, a legend's text), to ``Element(output)``, and that compiles it
    as a Jinja template: ``{{7*7}}`` in a name would print 49 and ``{{ lipsum... }}`` run
    code. Here that output is kept as text. Leaflet also inserts layer-control names and
    folium's tooltip and popup labels as HTML, so they are escaped for the render (and put
    back afterwards, so a map can be rendered again).
    """
    if _RENDERING.get():  # already inside (offline_html of a DataFigure): escape once
        yield
        return
    _install_hook()
    saved: list[tuple[Any, str, Any]] = []
    for element in _walk(root):
        if isinstance(element, folium.map.Layer) and isinstance(element.layer_name, str):
            saved.append((element, "layer_name", element.layer_name))
            element.layer_name = escape_html(element.layer_name)
        if isinstance(element, folium.features.GeoJsonDetail) and element.aliases is not None:
            saved.append((element, "aliases", element.aliases))
            element.aliases = [escape_html(a) for a in element.aliases]
    token = _RENDERING.set(True)
    try:
        yield
    finally:
        _RENDERING.reset(token)
        for element, attr, value in reversed(saved):
            setattr(element, attr, value)


class DataFigure(branca.element.Figure):
    """The page of a map made by ``base_map``: rendered with ``_render_as_data`` however it
    is rendered (``save_map``, folium's ``save``, a notebook's display)."""

    def render(self, **kwargs: Any) -> str:
        with _render_as_data(self):
            return super().render(**kwargs)


def _walk(element: branca.element.Element) -> Iterator[branca.element.Element]:
    """``element`` and everything below it (children, and a figure's header/html/script)."""
    stack = [element]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack.extend(e._children.values())
        for part in ("header", "html", "script"):
            sub = getattr(e, part, None)
            if isinstance(sub, branca.element.Element):
                stack.append(sub)


# --- Self-contained HTML -----------------------------------------------------------------------
def offline_html(m: folium.Map) -> str:
    """Render a folium map to one HTML string that loads nothing from the network.

    Leaflet (JS, CSS and the CSS's images as ``data:`` URIs) and jQuery are inlined from the
    ``xstatic`` packages; bootstrap, font-awesome and awesome-markers, which planner's maps do
    not use, are removed.

    Parameters
    ----------
    m : folium.Map
        The map.

    Returns
    -------
    str
        The HTML document (declares UTF-8).

    Raises
    ------
    RuntimeError
        If the map uses a resource planner cannot inline (e.g. a new folium dependency, a
        plugin, or ``folium.Icon`` which needs awesome-markers): the message names it.
    """
    root = m.get_root()
    with _render_as_data(root):
        text = root.render()
    if "L.AwesomeMarkers" in text:
        raise RuntimeError(
            "the map uses folium.Icon (Leaflet.awesome-markers from a CDN), which offline maps "
            "cannot carry: draw points with CircleMarker or GeoJson instead"
        )
    # Replace from the end so earlier offsets stay valid.
    for start, end, tag, url in reversed(_external_resources(text)):
        if tag == "script":
            # Remove the matching end tag too: <script src=...></script>.
            close = re.compile(r"\s*</script\s*>", re.I).match(text, end)
            if close:
                end = close.end()
        text = text[:start] + _replacement(tag, url) + text[end:]
    remaining = _external_resources(text)
    if remaining:  # a resource that slipped past the replacement (should not happen)
        raise RuntimeError(f"offline map still loads {remaining[0][3]}")
    if not re.search(r"<meta[^>]+charset=[\"']?utf-8", text[:2000], re.I):
        text = text.replace("<head>", '<head>\n<meta charset="utf-8" />', 1)
    return text


def save_map(m: folium.Map, path: str | Path) -> Path:
    """Write ``offline_html(m)`` to ``path`` (UTF-8, atomically) and return the path."""
    text = offline_html(m)  # render first: a failure leaves no file behind
    with atomic_file(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


class _ResourceFinder(HTMLParser):
    """Collect tags that would load a resource: <script src>, <link href>, <img src>, …

    HTMLParser treats <script>/<style> content as raw text, so URLs inside inlined code
    (Leaflet's attribution link, popup HTML in JS strings) are not mistaken for tags.
    """

    _ATTR: ClassVar[dict[str, str]] = {
        "script": "src",
        "link": "href",
        "img": "src",
        "iframe": "src",
        "embed": "src",
        "source": "src",
        "audio": "src",
        "video": "src",
        "object": "data",
    }

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self._line_starts = [0] + [mm.end() for mm in re.finditer("\n", text)]
        self.found: list[tuple[int, int, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        url = dict(attrs).get(self._ATTR.get(tag, ""))
        if not url or url.startswith(("data:", "#", "about:", "javascript:")):
            return
        line, col = self.getpos()
        start = self._line_starts[line - 1] + col
        self.found.append((start, start + len(self.get_starttag_text()), tag, url))


def _external_resources(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, tag, url) of every tag in ``text`` that loads a non-``data:`` URL."""
    finder = _ResourceFinder(text)
    finder.feed(text)
    finder.close()
    return finder.found


# folium's CDN links planner can inline or drop, by URL pattern.
_LEAFLET_JS = re.compile(r"leaflet(@[\d.]+)?(/dist)?/leaflet(-src)?\.js$", re.I)
_LEAFLET_CSS = re.compile(r"leaflet(@[\d.]+)?(/dist)?/leaflet\.css$", re.I)
_JQUERY = re.compile(r"/jquery(-[\d.]+)?(\.min)?\.js$", re.I)
# Bootstrap, glyphicons, font-awesome and awesome-markers style folium.Icon markers and
# folium's own plugins; planner draws CircleMarkers only, so they are not needed.
_DROP = re.compile(r"bootstrap|glyphicons|fontawesome|font-awesome|awesome-markers|awesome\.rotate", re.I)


def _replacement(tag: str, url: str) -> str:
    """Inline HTML for a folium resource URL, "" to drop it, or raise RuntimeError."""
    path = url.split("?")[0].split("#")[0]
    if tag == "script" and _LEAFLET_JS.search(path):
        _check_leaflet_version(path)
        return _script(_read_xstatic("leaflet", "leaflet.js"))
    if tag == "link" and _LEAFLET_CSS.search(path):
        _check_leaflet_version(path)
        return _style(_leaflet_css())
    if tag == "script" and _JQUERY.search(path):
        return _script(_read_xstatic("jquery", "jquery.min.js"))
    if tag in ("script", "link") and _DROP.search(path):
        return ""
    raise RuntimeError(
        f"offline map: cannot inline {url!r} (a new folium dependency or plugin?); "
        "add it to planner.maps or avoid the feature that needs it"
    )


def _xstatic_dir(name: str) -> Path:
    if name == "leaflet":
        import xstatic.pkg.leaflet as pkg
    else:
        import xstatic.pkg.jquery as pkg
    return Path(pkg.BASE_DIR)


def _read_xstatic(name: str, filename: str) -> str:
    code = (_xstatic_dir(name) / filename).read_text(encoding="utf-8")
    # Source-map comments point at files that are not there.
    return re.sub(r"^\s*//# sourceMappingURL=.*$", "", code, flags=re.M)


def _leaflet_css() -> str:
    """Leaflet's CSS with its images (layer-control icon, default marker) as data: URIs."""
    folder = _xstatic_dir("leaflet")
    css = (folder / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match) -> str:
        data = base64.b64encode((folder / "images" / match.group(1)).read_bytes()).decode()
        return f'url("data:image/png;base64,{data}")'

    return re.sub(r"url\(\s*['\"]?images/([\w.\-]+\.png)['\"]?\s*\)", data_uri, css)


def _check_leaflet_version(url: str) -> None:
    import xstatic.pkg.leaflet as pkg

    wanted = re.search(r"leaflet@([\d.]+)", url)
    have = str(pkg.VERSION)
    # folium writes its templates for its Leaflet version; a different minor may break them.
    if wanted and wanted.group(1).split(".")[:2] != have.split(".")[:2]:
        warnings.warn(
            f"folium expects Leaflet {wanted.group(1)} but xstatic-leaflet has {have}",
            stacklevel=3,
        )


def _script(code: str) -> str:
    # "</script" inside code would end the element early.
    return "<script>" + re.sub(r"</(script)", r"<\\/\1", code, flags=re.I) + "</script>"


def _style(css: str) -> str:
    return "<style>" + re.sub(r"</(style)", r"<\\/\1", css, flags=re.I) + "</style>"


def leaflet_tags() -> str:
    """Leaflet's CSS and JavaScript from the xstatic-leaflet package as inline ``<style>`` and
    ``<script>`` elements, for pages built without folium (``planner serve``)."""
    return _style(_leaflet_css()) + _script(_read_xstatic("leaflet", "leaflet.js"))
