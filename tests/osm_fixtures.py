"""Write small OSM XML files from coordinates in metres (a local UTM frame near Beijing).

Coordinates go through the same UTM zone the loader will pick, so distances in the test
are exact to floating point.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from pyproj import Transformer

UTM = "EPSG:32650"
X0, Y0 = 444_000.0, 4_428_000.0  # Haidian, Beijing
_to_wgs = Transformer.from_crs(UTM, 4326, always_xy=True)


def write_osm(
    path: Path, nodes: dict[int, tuple], ways: list[tuple], node_tags: dict[int, dict] | None = None
) -> Path:
    """nodes: id → (x, y) metres from the origin; ways: (id, [node ids], {tags})."""
    node_tags = node_tags or {}
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="planner-tests">']
    for nid, (x, y) in nodes.items():
        lon, lat = _to_wgs.transform(X0 + x, Y0 + y)
        tags = node_tags.get(nid, {})
        body = "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
        out.append(f'<node id="{nid}" version="1" lat="{lat:.9f}" lon="{lon:.9f}">{body}</node>')
    for wid, refs, tags in ways:
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        body = "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
        out.append(f'<way id="{wid}" version="1">{nds}{body}</way>')
    out.append("</osm>")
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def square(first_id: int, x0: float, y0: float, x1: float, y1: float) -> tuple[dict, list[int]]:
    """Corner nodes of a rectangle and the closed ring of their ids."""
    ids = list(range(first_id, first_id + 4))
    nodes = dict(zip(ids, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], strict=False))
    return nodes, [*ids, ids[0]]
