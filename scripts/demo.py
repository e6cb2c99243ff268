"""`make demo`: hide and reveal on the bundled sample photographs, and show what happened."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out" / "demo"
EXE = str(Path(sys.executable).parent / "stegshield")


def run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    print("$ stegshield " + " ".join(a if " " not in a else repr(a) for a in args))
    return subprocess.run([EXE, *args], text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "STEGSHIELD_PASSWORD": "demo password — change me"}
    samples = sorted((ROOT / "samples").glob("*.png"))
    message = "The eagle lands at midnight. (stegshield demo)"
    print(f"stegshield demo: {len(samples)} sample photographs in samples/, outputs in {OUT}\n")
    failures = 0
    for src in samples:
        stego = OUT / f"{src.stem}_stego.png"
        cap = run(["capacity", str(src)], env=env)
        print(cap.stdout.rstrip())
        t = time.perf_counter()
        hid = run(["hide", str(src), "-o", str(stego), "-m", message, "--force"], env=env)
        t_hide = time.perf_counter() - t
        print(hid.stderr.rstrip())
        t = time.perf_counter()
        rev = run(["reveal", str(stego)], env=env)
        t_rev = time.perf_counter() - t
        ok = hid.returncode == 0 and rev.returncode == 0 and rev.stdout.strip() == message
        failures += not ok
        a = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(src), dtype=int)
        b = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(stego), dtype=int)
        print(f"  revealed: {rev.stdout.strip()!r}  [{'OK' if ok else 'FAILED'}]  "
              f"hide {t_hide:.2f}s, reveal {t_rev:.2f}s, pixels changed {np.count_nonzero(a != b)}"
              f", max change {np.abs(a - b).max()}\n")
    wrong = run(["reveal", str(OUT / f"{samples[0].stem}_stego.png"), "--password", "guess"])
    print(f"{wrong.stderr.strip()}  (exit code {wrong.returncode})\n")
    failures += wrong.returncode != 1
    print("demo finished: " + ("all round trips exact" if not failures else f"{failures} FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
