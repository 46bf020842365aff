"""Build a city-sized OSM extract by tiling a real sample into an N × N grid of copies.

    python scripts/make_tiled_city.py N [--out DIR] [--source FILE] [--distinct-tags]

Every tile is a full copy of the source extract (default the Beijing Haidian sample
``sample_regions/beijing_haidian_cau.osm.pbf``: real streets, buildings, POIs, compounds and
gates), shifted east and north by the extent of its nodes plus a small gap, with node, way and
relation ids offset per tile so no two copies share an id. Neighbouring tiles are stitched by
short ``highway=footway`` ways between the outermost street nodes of the source's largest
street component, one per band along each shared edge, so the city is one walk network.

Copies repeat their source's tags, so a tag set that occurs once in the source occurs N × N
times in the city, where a real city's names, addresses and brands mostly occur once. With
``--distinct-tags`` every copy of such an object also gets ``tiled:tile=<tile number>``, so the
share of distinct tag sets in the city is the source's own (about 36 %; 34-40 % in the real
extracts of ``../shared/regions``): what a reader that parses each distinct tag set once meets
in a real city. That file is ``tiled_N_distinct.osm.pbf``; its streets, places and everything
planner reports are the same as ``tiled_N``'s.

Writes ``DIR/tiled_N.osm.pbf`` (default DIR ``/tmp/city``), readable by everybody.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import osmium
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "sample_regions" / "beijing_haidian_cau.osm.pbf"

# Streets a pedestrian and a car both use: the stitching footways start and end on them, so
# that they join the tiles' main street networks rather than a path inside a campus.
STREETS = {
    "primary", "primary_link", "secondary", "secondary_link", "tertiary", "tertiary_link",
    "unclassified", "residential", "living_street", "service", "trunk", "trunk_link",
}  # fmt: skip
GAP_DEG = 0.0005  # about 40-55 m between copies
BANDS = 6  # stitching footways per shared tile edge


def read_source(path: Path) -> dict:
    """Nodes, ways and relations of the source as plain Python data (read once), without the
    few ways and nodes that lie beyond the extent of its streets and buildings (subway lines
    and their stations, a river), so that the copies do not overlap."""
    nodes, ways, rels = [], [], []
    for o in osmium.FileProcessor(str(path)):
        tags = {t.k: t.v for t in o.tags}
        if o.is_node():
            if o.location.valid():
                nodes.append((o.id, o.location.lon, o.location.lat, tags))
        elif o.is_way():
            ways.append((o.id, [n.ref for n in o.nodes], tags))
        elif o.is_relation():
            rels.append((o.id, [(m.type, m.ref, m.role) for m in o.members], tags))
    loc = {n[0]: (n[1], n[2]) for n in nodes}
    kept = [refs for _, refs, tags in ways if "highway" in tags or "building" in tags]
    core = [loc[r] for refs in kept for r in refs if r in loc]
    (x0, y0), (x1, y1) = np.min(core, axis=0), np.max(core, axis=0)
    inside = {i for i, (x, y) in loc.items() if x0 <= x <= x1 and y0 <= y <= y1}
    ways = [w for w in ways if all(r in inside or r not in loc for r in w[1])]
    nodes = sorted((n for n in nodes if n[0] in inside), key=lambda n: n[0])
    ways.sort(key=lambda w: w[0])
    rels.sort(key=lambda r: r[0])
    return {"nodes": nodes, "ways": ways, "relations": rels}


def _span(ids) -> int:
    """A power of ten above every id, so that tile k's ids are ``id + k * span``."""
    return 10 ** math.ceil(math.log10(max(ids, default=1) + 1))


def stitch_nodes(src: dict) -> dict[str, list[int | None]]:
    """Per side (west, east, south, north) and band, the outermost node of the largest street
    component (None when a band has no street node)."""
    loc = {n[0]: (n[1], n[2]) for n in src["nodes"]}
    streets = [
        [r for r in refs if r in loc]
        for _, refs, tags in src["ways"]
        if tags.get("highway") in STREETS and tags.get("access") not in ("private", "no")
    ]
    ids = np.array(sorted({r for refs in streets for r in refs}), dtype=np.int64)
    pos = {int(i): k for k, i in enumerate(ids)}
    a = [pos[x] for refs in streets for x in refs[:-1]]
    b = [pos[y] for refs in streets for y in refs[1:]]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids)))
    _, label = connected_components(graph, directed=False)
    main = ids[label == np.bincount(label).argmax()]
    xy = np.array([loc[int(i)] for i in main])
    x0, y0 = np.array([n[1] for n in src["nodes"]]).min(), np.array([n[2] for n in src["nodes"]]).min()
    x1, y1 = np.array([n[1] for n in src["nodes"]]).max(), np.array([n[2] for n in src["nodes"]]).max()
    out: dict[str, list[int | None]] = {}
    for side, along, across, lo, hi, pick in (
        ("west", 1, 0, y0, y1, np.argmin),
        ("east", 1, 0, y0, y1, np.argmax),
        ("south", 0, 1, x0, x1, np.argmin),
        ("north", 0, 1, x0, x1, np.argmax),
    ):
        band = np.minimum(((xy[:, along] - lo) / (hi - lo) * BANDS).astype(int), BANDS - 1)
        out[side] = [
            int(main[np.nonzero(band == k)[0][pick(xy[band == k, across])]]) if (band == k).any() else None
            for k in range(BANDS)
        ]
    return out


def once_in_source(src: dict) -> set[tuple]:
    """The tag sets that only one object of the source has."""
    counts: dict[tuple, int] = {}
    for kind in ("nodes", "ways", "relations"):
        for obj in src[kind]:
            if obj[-1]:
                key = tuple(sorted(obj[-1].items()))
                counts[key] = counts.get(key, 0) + 1
    return {key for key, count in counts.items() if count == 1}


def write_city(src: dict, n: int, out: Path, distinct: bool = False) -> dict:
    """Write the N × N city (with ``distinct``, tag sets the source has once get the tile's
    number too); returns counts."""
    lon = np.array([x[1] for x in src["nodes"]])
    lat = np.array([x[2] for x in src["nodes"]])
    dx, dy = lon.max() - lon.min() + GAP_DEG, lat.max() - lat.min() + GAP_DEG
    span = {
        "n": _span([x[0] for x in src["nodes"]]),
        "w": _span([x[0] for x in src["ways"]]),
        "r": _span([x[0] for x in src["relations"]]),
    }
    tiles = [(i, j) for j in range(n) for i in range(n)]  # tile k = j * n + i
    ends = stitch_nodes(src)
    links = []  # (node in tile a, node in tile b)
    for k, (i, j) in enumerate(tiles):
        if i + 1 < n:
            pairs = zip(ends["east"], ends["west"], strict=True)
            links += [(e + k * span["n"], w + (k + 1) * span["n"]) for e, w in pairs if None not in (e, w)]
        if j + 1 < n:
            pairs = zip(ends["north"], ends["south"], strict=True)
            links += [(t + k * span["n"], s + (k + n) * span["n"]) for t, s in pairs if None not in (t, s)]
    if out.exists():
        out.unlink()
    mut = osmium.osm.mutable
    link_tags = {"highway": "footway", "tiled_city": "link"}
    once = once_in_source(src) if distinct else set()

    def tagged(tags: dict, k: int) -> dict:
        return {**tags, "tiled:tile": str(k)} if once and tuple(sorted(tags.items())) in once else tags

    with osmium.SimpleWriter(str(out)) as w:
        # Nodes, then ways, then relations, each in ascending id order (tile by tile).
        for k, (i, j) in enumerate(tiles):
            off, ox, oy = k * span["n"], i * dx, j * dy
            for nid, x, y, tags in src["nodes"]:
                w.add_node(mut.Node(id=nid + off, location=(x + ox, y + oy), tags=tagged(tags, k), version=1))
        for k in range(len(tiles)):
            off_n, off_w = k * span["n"], k * span["w"]
            for wid, refs, tags in src["ways"]:
                refs = [r + off_n for r in refs]
                w.add_way(mut.Way(id=wid + off_w, nodes=refs, tags=tagged(tags, k), version=1))
        first_link = len(tiles) * span["w"]
        for m, (a, b) in enumerate(links):
            w.add_way(mut.Way(id=first_link + m + 1, nodes=[a, b], tags=link_tags, version=1))
        for k in range(len(tiles)):
            off = {t: k * s for t, s in span.items()}
            for rid, members, tags in src["relations"]:
                mem = [(t, ref + off[t], role) for t, ref, role in members]
                w.add_relation(mut.Relation(id=rid + off["r"], members=mem, tags=tagged(tags, k), version=1))
    os.chmod(out, 0o644)
    return {
        "tiles": len(tiles),
        "nodes": len(tiles) * len(src["nodes"]),
        "ways": len(tiles) * len(src["ways"]) + len(links),
        "relations": len(tiles) * len(src["relations"]),
        "links": len(links),
        "extent_km": (n * dx * 111.32 * math.cos(math.radians(lat.mean())), n * dy * 111.32),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int, help="tiles per side (N × N copies)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/city"), help="output folder (default /tmp/city)")
    ap.add_argument("--source", type=Path, default=SOURCE, help="the extract to tile (.osm or .osm.pbf)")
    ap.add_argument(
        "--distinct-tags",
        action="store_true",
        help="tag sets the source has once get the tile's number too (tiled_N_distinct.osm.pbf)",
    )
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("N must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    os.chmod(args.out, 0o755)
    started = time.perf_counter()
    src = read_source(args.source)
    out = args.out / f"tiled_{args.n}{'_distinct' if args.distinct_tags else ''}.osm.pbf"
    facts = write_city(src, args.n, out, args.distinct_tags)
    w_km, h_km = facts.pop("extent_km")
    print(
        f"{out}: {facts['tiles']} tiles, {facts['nodes']:,} nodes, {facts['ways']:,} ways "
        f"({facts['links']:,} stitching footways), {facts['relations']:,} relations, "
        f"{w_km:.0f} × {h_km:.0f} km, {out.stat().st_size / 1e6:.1f} MB, "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
