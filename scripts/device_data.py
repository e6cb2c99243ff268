"""Make the compact cover folder that travels to a GPU machine (at most 64 MiB go there).

    python scripts/device_data.py [--corpus .cache/corpus/gray] [--out .devdata/gray]

Copies the train and validation tiles of one size (default 256², ~42 MB for the gray corpus)
and a manifest of just those rows; the test split stays home (evaluation runs on the CPU with
the real embedders).  ``.devdata/`` must be git-ignored locally
(``echo /.devdata/ >> .git/info/exclude``) and named in the device call's ``carry``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=".cache/corpus/gray")
    ap.add_argument("--out", default=".devdata/gray")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--splits", default="train,val")
    args = ap.parse_args()
    src, out = Path(args.corpus), Path(args.out)
    splits = set(args.splits.split(","))
    rows = [json.loads(line) for line in (src / "manifest.jsonl").open()]
    keep = [r for r in rows if r["split"] in splits and int(r["tile"]) == args.tile]
    if out.exists():
        shutil.rmtree(out)
    size = 0
    for r in keep:
        dst = out / r["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / r["path"], dst)
        size += dst.stat().st_size
    with (out / "manifest.jsonl").open("w") as fh:
        for r in keep:
            fh.write(json.dumps(r, sort_keys=True) + "\n")
    print(f"{len(keep)} tiles of {args.tile}² ({size / 2**20:.1f} MiB) in {out}")


if __name__ == "__main__":
    main()
