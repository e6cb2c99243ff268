"""Image encryption benchmark: speed, measured randomness, and a learned adversary.

Writes a Markdown ``## Image encryption`` section to stdout and, with ``--out FILE``, into that
file (replacing the section if present, keeping the rest). Sections:

  A. speed: encrypt / decrypt a 12-megapixel RGB photo (file to file, and the cipher alone),
     side by side with raw ChaCha20, ChaCha20-Poly1305 and AES-256-GCM from ``cryptography``
     on the same bytes in the same run; Argon2id reported separately;
  B. audit metrics on 512x512 real photographs (samples/, centre crop upscaled);
  C. NPCR/UACI pass rates over many keys against the ideal rate;
  D. a learned adversary trained on (cipher-image -> plain image) pairs under one fixed key:
     ridge regression on whole tiles and a small convolutional network (5x5 conv, ReLU, 1x1
     conv, trained by Adam in numpy), reported as PSNR against the mean-image baseline on
     held-out photographs; controls (a pixel permutation, the CNN coupling without keystream)
     show that the adversary does learn when there is something to learn.

Usage: .venv/bin/python scripts/bench_cipher.py [--out BENCHMARKS.md] [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from PIL import Image

from stegshield.cipher import api, metrics, network
from stegshield.cipher.audit import audit_array
from stegshield.cipher.keys import CipherKeys
from stegshield.crypto.kdf import DEFAULT_KDF, derive_key
from stegshield.imaging import encode_image, open_image, save_image
from stegshield.reporting import machine_description, replace_section

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "samples").glob("*.png"))
HEADING = "## Image encryption"
KEY = hashlib.sha256(b"bench_cipher fixed key").digest()


def tune_malloc() -> None:
    """As the Makefile does (MALLOC_MMAP_MAX_=0): keep big buffers off fresh mmap pages."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX
        libc.mallopt(-1, 1 << 40)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def photo_of_size(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image: a sample photograph resized, plus sensor-like noise (sigma 1.5)."""
    src = Image.open(ROOT / "samples" / "path_rgb.png").convert("RGB")
    big = np.asarray(src.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    noise = np.random.default_rng(seed).normal(0, 1.5, big.shape)
    return np.clip(np.rint(big + noise), 0, 255).astype(np.uint8)


def square_photo(path: Path, size: int, mode: str | None = None) -> np.ndarray:
    img = Image.open(path)
    if mode:
        img = img.convert(mode)
    w, h = img.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(img.crop(box).resize((size, size), Image.Resampling.BICUBIC))


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


# ---------------------------------------------------------------- A. speed
def bench_speed(quick: bool) -> list[str]:
    w, h = (4000, 3000) if not quick else (2000, 1500)
    repeat = 3 if quick else 5
    pixels = photo_of_size(w, h)
    nbytes = pixels.size
    mb = nbytes / 1e6
    tmp = Path(tempfile.mkdtemp(prefix="stegshield-cipher-bench-"))
    src, cph, back = tmp / "photo.png", tmp / "cipher.png", tmp / "back.png"
    save_image(src, pixels, "RGB", force=True)
    api.encrypt_array(pixels[:8, :8], "RGB", key=KEY)  # load the numba cache

    data = pixels.tobytes()

    def chacha() -> None:
        out = np.empty(nbytes, dtype=np.uint8)
        Cipher(algorithms.ChaCha20(KEY, bytes(16)), None).encryptor().update_into(data, out)

    rows: list[tuple[str, tuple[float, float]]] = [
        ("ChaCha20 (cryptography, raw stream)", timed(chacha, repeat)),
        ("ChaCha20-Poly1305 (cryptography AEAD)",
         timed(lambda: ChaCha20Poly1305(KEY).encrypt(bytes(12), data, None), repeat)),
        ("AES-256-GCM (cryptography AEAD)",
         timed(lambda: AESGCM(KEY).encrypt(bytes(12), data, None), repeat)),
    ]
    enc = api.encrypt_array(pixels, "RGB", key=KEY)
    rows.append(("**stegshield cipher, encrypt** (arrays)",
                 timed(lambda: api.encrypt_array(pixels, "RGB", key=KEY), repeat)))
    rows.append(("**stegshield cipher, decrypt** (arrays, incl. key and tag checks)",
                 timed(lambda: api.decrypt_array(enc.pixels, enc.header, key=KEY), repeat)))

    def enc_file() -> None:
        api.encrypt(src, cph, key=KEY, force=True)

    def dec_file() -> None:
        api.decrypt(cph, back, key=KEY, force=True)

    rows.append(("**encrypt file → file** (decode input PNG, cipher, write cipher PNG)",
                 timed(enc_file, repeat)))
    rows.append(("**decrypt file → file** (read, CRCs, cipher, write output PNG)",
                 timed(dec_file, repeat)))
    assert np.array_equal(open_image(back).pixels, pixels)
    parts = [
        ("decode the input photo (Pillow)", timed(lambda: open_image(src), repeat)),
        ("write the cipher-image PNG (stored deflate: it is incompressible)",
         timed(lambda: api.encode_cipher_image(enc), repeat)),
        ("read + check the cipher-image PNG", timed(lambda: api.read_cipher_image(cph),
                                                     repeat)),
        ("encode the decrypted photo as PNG (imaging.encode_image: Sub filter, Z_RLE, 2 threads)",
         timed(lambda: encode_image(pixels, "RGB", "PNG"), repeat)),
    ]
    t_kdf = timed(lambda: derive_key(b"benchmark password", bytes(16), DEFAULT_KDF), 3)
    for p in (src, cph, back):
        p.unlink(missing_ok=True)
    tmp.rmdir()
    lines = [
        f"Image: {w}×{h} RGB ({w * h / 1e6:.1f} MP, {mb:.0f} MB of samples), a sample photograph "
        f"upscaled with sensor-like noise; median of {repeat} runs; raw 32-byte key (Argon2id "
        "is excluded here and given below). Wall time is what the machine delivered while "
        "shared (see its load average above); CPU time is the work itself, summed over "
        "threads.",
        "",
        "| operation | wall time | throughput | CPU time |",
        "| --- | --- | --- | --- |",
    ]
    for name, (t, c) in rows:
        lines.append(f"| {name} | {t * 1000:.0f} ms | {mb / t:.0f} MB/s | {c * 1000:.0f} ms |")
    lines += ["", "Parts of the file paths:", "", "| part | wall time | CPU time |",
              "| --- | --- | --- |"]
    for name, (t, c) in parts:
        lines.append(f"| {name} | {t * 1000:.0f} ms | {c * 1000:.0f} ms |")
    lines += [
        "",
        f"Argon2id for a password (t={DEFAULT_KDF.time_cost}, "
        f"m={DEFAULT_KDF.memory_kib // 1024} MiB, p={DEFAULT_KDF.parallelism}), once per encrypt "
        f"or decrypt, deliberately slow: {t_kdf[0] * 1000:.0f} ms wall.",
    ]
    for line in lines:
        print(line, flush=True)
    return lines


# ---------------------------------------------------------------- B. audit metrics
def bench_audit(quick: bool) -> list[str]:
    names = SAMPLES if not quick else SAMPLES[:3]
    lines = [
        "Each sample photograph: centre square crop upscaled to 512×512, encrypted with a random "
        "key, salt and nonce. Entropy and correlations: worst channel; chi-square over all "
        "samples; NPCR/UACI over all samples (critical values of Wu et al. 2011, α = 0.05, for "
        "the number of samples).",
        "",
        "| photo | mode | entropy (≥ 7.997) | max abs r: plain → cipher (< 0.01) | chi-square p "
        "| plaintext NPCR / UACI % | key NPCR / UACI % | all pass |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path in names:
        mode = Image.open(path).mode
        pixels = square_photo(path, 512)
        r = audit_array(pixels, mode)
        ent = min(s.entropy for s in r.cipher)
        r_plain = max(abs(v) for s in r.plain for v in s.correlation.values())
        r_cipher = max(abs(v) for s in r.cipher for v in s.correlation.values())
        ps, ks = r.plaintext_sensitivity, r.key_sensitivity
        lines.append(
            f"| {path.stem} | {mode} | {ent:.4f} | {r_plain:.3f} → {r_cipher:.4f} | "
            f"{r.chi_square.p_value:.3f} | {ps.npcr:.4f} / {ps.uaci:.4f} "
            f"{'✓' if ps.passed else '✗'} | {ks.npcr:.4f} / {ks.uaci:.4f} "
            f"{'✓' if ks.passed else '✗'} | {'yes' if r.passed else 'no'} |")
        print(lines[-1], flush=True)
    n = 512 * 512
    lo, hi = metrics.uaci_interval(n)
    lines += ["", "Critical values for 512×512 (one channel): NPCR ≥ "
              f"{metrics.npcr_critical(n):.4f} %, UACI in [{lo:.4f}, {hi:.4f}] %. A ✗ at "
              "α = 0.05 is expected in about one test in ten for an ideal cipher (section C "
              "gives the rates)."]
    return lines


# ---------------------------------------------------------------- C. pass rates
def bench_pass_rates(quick: bool) -> list[str]:
    trials = 60 if quick else 300
    p = square_photo(ROOT / "samples" / "grey_gray.png", 256)
    rng = np.random.default_rng(7)
    stats: dict[str, list[tuple[float, float, bool]]] = {"plaintext": [], "key": []}
    for _ in range(trials):
        key, salt, nonce = (bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in (32, 16, 16))
        base = api.encrypt_array(p, "L", key=key, salt=salt, nonce=nonce).pixels
        q = p.copy()
        i, j = rng.integers(0, 256, 2)
        q[i, j] = q[i, j] + 1 if q[i, j] < 255 else 254
        k2 = key[:-1] + bytes([key[-1] ^ 1])
        for name, other in (("plaintext", api.encrypt_array(q, "L", key=key, salt=salt,
                                                            nonce=nonce)),
                            ("key", api.encrypt_array(p, "L", key=k2, salt=salt, nonce=nonce))):
            s = metrics.sensitivity(base, other.pixels)
            stats[name].append((s.npcr, s.uaci, s.passed))
    n = 256 * 256
    mu_u = 257 / 768 * 100
    sd_u = (257 * (255 * 255 + 2 * 255 + 3) / (18 * 256 * 256 * n * 255)) ** 0.5 * 100
    sd_n = (255 / n) ** 0.5 / 256 * 100
    lines = [
        f"{trials} random (key, salt, nonce) on grey_gray 256×256; plaintext change: one random "
        "pixel ±1 level; key change: one bit. An ideal cipher (uniform, independent "
        f"cipher-images) has NPCR {255 / 256 * 100:.4f} ± {sd_n:.4f} %, UACI {mu_u:.4f} ± "
        f"{sd_u:.4f} %, and passes both tests with probability 0.95 × 0.95 ≈ 0.90.",
        "",
        "| change | NPCR mean ± sd (%) | UACI mean ± sd (%) | pass rate (both tests) |",
        "| --- | --- | --- | --- |",
    ]
    for name, vals in stats.items():
        a = np.array(vals, dtype=np.float64)
        lines.append(f"| {name} | {a[:, 0].mean():.4f} ± {a[:, 0].std():.4f} | "
                     f"{a[:, 1].mean():.4f} ± {a[:, 1].std():.4f} | {a[:, 2].mean():.3f} |")
        print(lines[-1], flush=True)
    return lines


# ---------------------------------------------------------------- D. learned adversary
TILE = 32


def tiles(img: np.ndarray, stride: int, flips: bool) -> list[np.ndarray]:
    out = []
    h, w = img.shape
    for i in range(0, h - TILE + 1, stride):
        for j in range(0, w - TILE + 1, stride):
            t = img[i:i + TILE, j:j + TILE]
            out.append(t)
            if flips:
                out += [t[:, ::-1], t[::-1, :], t[::-1, ::-1]]
    return [np.ascontiguousarray(t) for t in out]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def ridge_attack(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Whole-tile linear decoder (plain - mean) = W (cipher - mean cipher), ridge, lambda by
    validation on the last 10 % of the training pairs."""
    x = xtr.reshape(len(xtr), -1).astype(np.float64) / 255
    y = ytr.reshape(len(ytr), -1).astype(np.float64) - mean.reshape(-1)
    mx = x.mean(0)
    x -= mx
    n_val = max(1, len(x) // 10)
    best = (np.inf, 1.0)
    for lam in (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0):
        xa, ya = x[:-n_val], y[:-n_val]
        w = np.linalg.solve(xa.T @ xa + lam * np.eye(x.shape[1]), xa.T @ ya)
        err = float(np.mean((x[-n_val:] @ w - y[-n_val:]) ** 2))
        best = min(best, (err, lam))
    lam = best[1]
    w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
    xt = xte.reshape(len(xte), -1).astype(np.float64) / 255 - mx
    pred = xt @ w + mean.reshape(-1)
    return np.clip(pred, 0, 255).reshape(xte.shape)


def patches(x: np.ndarray) -> np.ndarray:
    """5x5 neighbourhoods (zero-padded) of every pixel of each tile, scaled to [-1, 1], plus
    the 8 bit-planes of the centre sample: the input of a 5x5 convolution."""
    xs = x.astype(np.float32) / 127.5 - 1
    pad = np.pad(xs, ((0, 0), (2, 2), (2, 2)))
    cols = [pad[:, di:di + TILE, dj:dj + TILE] for di in range(5) for dj in range(5)]
    bits = [((x >> b) & 1).astype(np.float32) * 2 - 1 for b in range(8)]
    return np.stack(cols + bits, axis=-1).reshape(-1, 33)


def cnn_attack(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, mean: np.ndarray,
               epochs: int, max_tiles: int = 1000, seed: int = 0) -> np.ndarray:
    """A small CNN (5x5 conv with 64 channels, ReLU, 1x1 conv) predicting plain - mean image,
    trained by Adam on mean-squared error, in numpy, on at most ``max_tiles`` training tiles
    (a million pixels: plenty for 2,200 weights)."""
    rng = np.random.default_rng(seed)
    if len(xtr) > max_tiles:
        pick = rng.permutation(len(xtr))[:max_tiles]
        xtr, ytr = xtr[pick], ytr[pick]
    feats = patches(xtr)
    target = ((ytr.astype(np.float32) - mean[None]) / 64).reshape(-1, 1)
    hidden = 64
    params = {"w1": rng.normal(0, (2 / 33) ** 0.5, (33, hidden)).astype(np.float32),
              "b1": np.zeros(hidden, np.float32),
              "w2": rng.normal(0, (1 / hidden) ** 0.5, (hidden, 1)).astype(np.float32),
              "b2": np.zeros(1, np.float32)}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    step, lr, batch = 0, 2e-3, 4096
    for _ in range(epochs):
        order = rng.permutation(len(feats))
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            xb, yb = feats[idx], target[idx]
            z = xb @ params["w1"] + params["b1"]
            a = np.maximum(z, 0)
            out = a @ params["w2"] + params["b2"]
            g_out = 2 * (out - yb) / len(idx)
            grads = {"w2": a.T @ g_out, "b2": g_out.sum(0)}
            g_z = (g_out @ params["w2"].T) * (z > 0)
            grads["w1"], grads["b1"] = xb.T @ g_z, g_z.sum(0)
            step += 1
            for k in params:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                mh, vh = m[k] / (1 - 0.9 ** step), v[k] / (1 - 0.999 ** step)
                params[k] -= lr * mh / (np.sqrt(vh) + 1e-8)
    ft = patches(xte)
    out = np.maximum(ft @ params["w1"] + params["b1"], 0) @ params["w2"] + params["b2"]
    pred = out.reshape(xte.shape) * 64 + mean[None]
    return np.clip(pred, 0, 255)


def cnn_only(tile: np.ndarray, keys: network.NetworkKeys) -> np.ndarray:
    """CONTROL: the same coupling network with the keystream removed (CNN shifts only)."""
    arr = tile[:, :, None]
    halves = network.Halves.from_pixels(np.ascontiguousarray(arr))
    for r in range(len(keys.round_keys)):
        x, y, off = (halves.a, halves.b, 0) if r % 2 == 0 else (halves.b, halves.a, -1)
        ks = np.zeros(y.shape[0] * (y.shape[1] - 2) * (y.shape[2] - 2), np.uint8)
        network._couple(y, x, ks, keys.w1[r], keys.b1[r], keys.w2[r], keys.b2[r], off, 1, 0,
                        y.shape[1] - 2)
    return halves.to_pixels()[:, :, 0]


def bench_adversary(quick: bool) -> list[str]:
    gray = [np.asarray(Image.open(p).convert("L")) for p in SAMPLES]
    test_ids = {0, 4}  # bythewater, flower: held out, never seen in training
    train = [t for k, g in enumerate(gray) if k not in test_ids for t in tiles(g, 16, True)]
    test = [t for k, g in enumerate(gray) if k in test_ids for t in tiles(g, 32, False)]
    rng = np.random.default_rng(0)
    if quick:
        train = [train[i] for i in rng.permutation(len(train))[:3000]]
    ytr, yte = np.stack(train), np.stack(test)
    mean = ytr.astype(np.float64).mean(0)
    base = psnr(np.broadcast_to(mean, yte.shape), yte)
    salt, nonce = bytes(16), bytes(range(16))
    perm = rng.permutation(TILE * TILE)
    net_keys = CipherKeys(KEY).network(1)
    noise_rng = np.random.default_rng(99)
    schemes: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "control: uniform noise independent of the image (nothing to learn)":
            lambda t: noise_rng.integers(0, 256, t.shape, dtype=np.uint8),
        "stegshield, fixed key, random salt+nonce per image (normal use)":
            lambda t: api.encrypt_array(t, "L", key=KEY).pixels,
        "stegshield, fixed key, salt AND nonce fixed (one permutation for all images)":
            lambda t: api.encrypt_array(t, "L", key=KEY, salt=salt, nonce=nonce).pixels,
        "control: fixed pixel permutation (a scrambling cipher)":
            lambda t: t.reshape(-1)[perm].reshape(t.shape),
        "control: the CNN coupling alone, no keystream":
            lambda t: cnn_only(t, net_keys),
    }
    epochs = 2 if quick else 4
    lines = [
        f"Tiles of {TILE}×{TILE} gray from the sample photographs: {len(ytr):,} training pairs "
        f"from 5 photographs (with flips), {len(yte):,} test pairs from 2 other photographs. "
        "One fixed key throughout. Baseline = predicting the mean training image: "
        f"PSNR {base:.2f} dB on the test pairs. The models predict the difference from the mean "
        "image, so a model that learns nothing lands near the baseline; how near is shown by "
        "the same models trained on noise that is independent of the image (first row).",
        "",
        "| cipher under attack | ridge (whole tile, linear, all pairs) | CNN 5×5→64→1 (Adam, "
        f"{epochs} epochs, 1,000 tiles) | best gain over the mean image | over the noise "
        "control |",
        "| --- | --- | --- | --- | --- |",
    ]
    noise_best = None
    for name, fn in schemes.items():
        xtr = np.stack([fn(t) for t in train])
        xte = np.stack([fn(t) for t in test])
        p_ridge = psnr(ridge_attack(xtr, ytr, xte, mean), yte)
        p_cnn = psnr(cnn_attack(xtr, ytr, xte, mean, epochs), yte)
        best = max(p_ridge, p_cnn)
        noise_best = best if noise_best is None else noise_best
        lines.append(f"| {name} | {p_ridge:.2f} dB | {p_cnn:.2f} dB | {best - base:+.2f} dB | "
                     f"{best - noise_best:+.2f} dB |")
        print(lines[-1], flush=True)
    return lines


# ---------------------------------------------------------------- output
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="Markdown file to update")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer trials")
    ap.add_argument("--sections", default="ABCD", help="which sections to run (default ABCD)")
    args = ap.parse_args()
    tune_malloc()
    started = dt.datetime.now(dt.UTC)
    run = {k: k in args.sections.upper() for k in "ABCD"}
    section = [
        HEADING, "",
        f"- command: `{'.venv/bin/python scripts/bench_cipher.py ' + ' '.join(sys.argv[1:])}`",
        f"- machine: {machine_description()}",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        "- design and what the security rests on: `docs/CIPHER.md`",
        "",
    ]
    parts = [
        ("A", "### A. Speed (12-megapixel RGB photo)" if not args.quick else
         "### A. Speed (quick: 3 MP)", bench_speed),
        ("B", "### B. Audit metrics on real photographs (512×512)", bench_audit),
        ("C", "### C. NPCR/UACI pass rates against an ideal cipher", bench_pass_rates),
        ("D", "### D. A learned adversary (cipher-image → plain image, one fixed key)",
         bench_adversary),
    ]
    for key, title, fn in parts:
        if run[key]:
            print(title, file=sys.stderr, flush=True)
            section += [title, "", *fn(args.quick), ""]
    print("\n".join(section))
    if args.out is not None:
        replace_section(args.out, HEADING, "\n".join(section))
        print(f"wrote {args.out}", file=sys.stderr)
    return 0



if __name__ == "__main__":
    sys.exit(main())
