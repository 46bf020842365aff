"""Make the compact sample extracts in sample_regions/ from the real ones in ../shared/regions.

    python scripts/prepare_samples.py

Each OSM XML extract is rewritten as .osm.pbf (same objects, about a tenth of the size).
The data are © OpenStreetMap contributors, ODbL 1.0 (see sample_regions/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import osmium

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "regions"
SAMPLES = sorted(p.name[: -len(".osm")] for p in SHARED.glob("*.osm")) if SHARED.exists() else []


def convert(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp.osm.pbf")
    tmp.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(tmp))
    try:
        for obj in osmium.FileProcessor(str(src)):
            writer.add(obj)
    finally:
        writer.close()
    tmp.replace(dst)


def main() -> int:
    if not SHARED.exists():
        print(f"needs {SHARED} (the shared real extracts)", file=sys.stderr)
        return 2
    out = ROOT / "sample_regions"
    out.mkdir(exist_ok=True)
    for name in SAMPLES:
        dst = out / f"{name}.osm.pbf"
        convert(SHARED / f"{name}.osm", dst)
        print(f"{dst.relative_to(ROOT)}: {dst.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
