"""`make demo`: hide and reveal on the bundled sample photographs, and show what happened."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

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
        a = np.asarray(Image.open(src), dtype=int)
        b = np.asarray(Image.open(stego), dtype=int)
        print(f"  revealed: {rev.stdout.strip()!r}  [{'OK' if ok else 'FAILED'}]  "
              f"hide {t_hide:.2f}s, reveal {t_rev:.2f}s, pixels changed {np.count_nonzero(a != b)}"
              f", max change {np.abs(a - b).max()}\n")
    wrong = run(["reveal", str(OUT / f"{samples[0].stem}_stego.png"), "--password", "guess"])
    print(f"{wrong.stderr.strip()}  (exit code {wrong.returncode})\n")
    failures += wrong.returncode != 1

    # What a naive tool leaves behind: sequential LSB replacement (like hobby tools) of the
    # same photo, then a scan of covers, our stego images and the naive one.
    naive = OUT / "naive_sequential_lsb.png"
    px = np.array(Image.open(samples[-1]).convert("RGB"))
    flat = px.reshape(-1)
    bits = np.random.default_rng(0).integers(0, 2, flat.size // 2, dtype=np.uint8)
    flat[: bits.size] = (flat[: bits.size] & 0xFE) | bits
    Image.fromarray(px).save(naive)
    print("scan: the sample covers, stegshield's stego images, and one naive sequential-LSB "
          "image")
    ours = [str(OUT / f"{s.stem}_stego.png") for s in samples]  # not the folder: a cipher
    # image left by an earlier run is noise-like and rightly alerts (it looks fully embedded)
    scan = run(["scan", str(ROOT / "samples"), *ours, str(naive), "--detector", "classical",
                "--report", str(OUT / "report.html")])
    print(scan.stdout.rstrip())
    print(f"  (exit code {scan.returncode}: 1 = at least one alert; report: "
          f"{OUT / 'report.html'})")
    print("  (suspicious = past the 5 % false-positive threshold: about one clean photograph in "
          "20 lands there; an alert is past 1 %)\n")
    failures += scan.returncode != 1 or "naive_sequential_lsb" not in scan.stdout

    # Image encryption with the keyed invertible CNN
    cipher, back = OUT / "cipher.png", OUT / "decrypted.png"
    enc = run(["encrypt", str(samples[0]), "-o", str(cipher), "--force"], env=env)
    print(enc.stderr.rstrip())
    dec = run(["decrypt", str(cipher), "-o", str(back), "--force"], env=env)
    print(dec.stderr.rstrip())
    same = np.array_equal(np.asarray(Image.open(samples[0])), np.asarray(Image.open(back)))
    print(f"  decrypted image identical to the original: {same}\n")
    failures += not same
    print("demo finished: " + ("everything worked" if not failures else f"{failures} FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
