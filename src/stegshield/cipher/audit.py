"""``cipher-audit``: measure how random and how sensitive the cipher is on one image.

The measures are the ones the image-encryption literature reports (entropy, adjacent-pixel
correlation, histogram chi-square, NPCR/UACI for plaintext and key sensitivity), judged with
explicit critical values (``metrics``). At a significance level alpha, a perfect cipher still
fails each hypothesis test with probability alpha: one failure in an audit is not evidence of a
weakness; a systematic one is.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..crypto.kdf import DEFAULT_KDF, SALT_BYTES, KdfParams
from ..imaging import DEFAULT_MAX_PIXELS, open_image
from . import metrics
from .api import PathLike, encrypt_array
from .errors import CipherError
from .header import NONCE_BYTES

MIN_AUDIT_PIXELS = 64


@dataclass(frozen=True)
class ChannelStats:
    """Entropy, adjacent correlations and chi-square of one channel."""

    entropy: float
    correlation: dict[str, float]
    chi_square: metrics.ChiSquare


@dataclass(frozen=True)
class AuditReport:
    """All audit measures for one image; ``checks`` says which pass."""

    width: int
    height: int
    mode: str
    alpha: float
    plain: list[ChannelStats]
    cipher: list[ChannelStats]
    entropy_threshold: float
    correlation_threshold: float
    chi_square: metrics.ChiSquare
    plaintext_sensitivity: metrics.Sensitivity
    key_sensitivity: metrics.Sensitivity
    changed_sample: tuple[int, int, int]
    seconds: float
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        for name in ("plaintext_sensitivity", "key_sensitivity"):
            d[name]["passed"] = getattr(self, name).passed
        d["passed"] = self.passed
        return d


def _stats(pixels: np.ndarray, alpha: float) -> list[ChannelStats]:
    return [ChannelStats(metrics.entropy(ch), metrics.adjacent_correlation(ch),
                         metrics.chi_square_uniform(ch, alpha))
            for ch in metrics.channels(pixels)]


def _flip_one_bit(secret: bytes) -> bytes:
    return secret[:-1] + bytes([secret[-1] ^ 1])


def audit_array(pixels: np.ndarray, mode: str, *, password: bytes | None = None,
                key: bytes | None = None, salt: bytes | None = None,
                nonce: bytes | None = None, kdf: KdfParams = DEFAULT_KDF,
                alpha: float = 0.05) -> AuditReport:
    """Encrypt ``pixels`` three times (as is, one sample changed by one level, key with one
    bit flipped; same salt and nonce) and measure the cipher-images.

    Without a password or key a random 32-byte key is used (no Argon2id cost).
    """
    t0 = time.perf_counter()
    h, w = pixels.shape[:2]
    if h * w < MIN_AUDIT_PIXELS:
        raise CipherError(f"image too small to audit ({w}x{h}; need {MIN_AUDIT_PIXELS} pixels)")
    if password is None and key is None:
        key = os.urandom(32)
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    common = {"salt": salt, "nonce": nonce, "kdf": kdf}
    base = encrypt_array(pixels, mode, password=password, key=key, **common).pixels

    i, j = h // 2, w // 2
    changed = pixels.copy()
    view = changed if changed.ndim == 3 else changed[:, :, None]
    view[i, j, 0] = view[i, j, 0] + 1 if view[i, j, 0] < 255 else 254
    plain_c = encrypt_array(changed, mode, password=password, key=key, **common).pixels

    if key is not None:
        key_c = encrypt_array(pixels, mode, key=_flip_one_bit(key), **common).pixels
    else:
        assert password is not None
        key_c = encrypt_array(pixels, mode, password=_flip_one_bit(password), **common).pixels

    plain_stats, cipher_stats = _stats(pixels, alpha), _stats(base, alpha)
    ent_t = metrics.entropy_threshold(h * w)
    cor_t = metrics.correlation_threshold(min(h * (w - 1), (h - 1) * w) or 1)
    chi = metrics.chi_square_uniform(base, alpha)  # all samples: one test, not one per channel
    p_sens = metrics.sensitivity(base, plain_c, alpha)
    k_sens = metrics.sensitivity(base, key_c, alpha)
    checks = {
        "entropy": all(s.entropy >= ent_t for s in cipher_stats),
        "correlation": all(abs(v) < cor_t for s in cipher_stats for v in s.correlation.values()),
        "chi_square": chi.passed,
        "plaintext_sensitivity": p_sens.passed,
        "key_sensitivity": k_sens.passed,
    }
    return AuditReport(w, h, mode, alpha, plain_stats, cipher_stats, ent_t, cor_t, chi, p_sens,
                       k_sens, (i, j, 0), time.perf_counter() - t0, checks)


def audit(image: PathLike | bytes, *, password: bytes | None = None, key: bytes | None = None,
          salt: bytes | None = None, nonce: bytes | None = None, kdf: KdfParams = DEFAULT_KDF,
          alpha: float = 0.05, max_pixels: int = DEFAULT_MAX_PIXELS) -> AuditReport:
    """:func:`audit_array` on an image file (or its bytes)."""
    img = open_image(image, max_pixels)
    return audit_array(img.pixels, img.mode, password=password, key=key, salt=salt,
                       nonce=nonce, kdf=kdf, alpha=alpha)


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def format_audit(r: AuditReport) -> str:
    """A plain-text table of the audit, one line per measure."""
    names = list(r.mode) if r.mode != "L" else ["L"]
    n = r.width * r.height
    lines = [f"image {r.width}x{r.height} {r.mode} ({n:,} pixels), alpha = {r.alpha:g}",
             f"{'measure':<34}" + "".join(f"{c:>18}" for c in names) + "   verdict"]

    def row(label: str, plain: list[float], cipher: list[float], verdict: str) -> None:
        cells = "".join(f"{p:>8.4f} → {c:<7.4f}" for p, c in zip(plain, cipher, strict=True))
        lines.append(f"{label:<34}{cells}   {verdict}")

    row(f"entropy, bits (≥ {r.entropy_threshold:.4f})", [s.entropy for s in r.plain],
        [s.entropy for s in r.cipher], _mark(r.checks["entropy"]))
    for d in ("horizontal", "vertical", "diagonal"):
        row(f"correlation {d} (|r| < {r.correlation_threshold:.3g})",
            [s.correlation[d] for s in r.plain], [s.correlation[d] for s in r.cipher],
            _mark(r.checks["correlation"]))
    chi = r.chi_square
    lines.append(f"{'chi-square p-value':<34}"
                 + "".join(f"{s.chi_square.p_value:>18.3f}" for s in r.cipher))
    lines.append(f"{'chi-square, all samples':<34}{chi.statistic:.1f} (≤ {chi.critical:.1f} "
                 f"at 255 dof), p = {chi.p_value:.3f}   {_mark(r.checks['chi_square'])}")
    for label, s in (("plaintext sensitivity", r.plaintext_sensitivity),
                     ("key sensitivity (1 key bit)", r.key_sensitivity)):
        lines.append(f"{label + ' NPCR %':<34}" + "".join(f"{v:>18.4f}" for v in s.channel_npcr))
        lines.append(f"{label + ' UACI %':<34}" + "".join(f"{v:>18.4f}" for v in s.channel_uaci))
        lines.append(f"{'  all ' + format(s.n, ',') + ' samples':<34}NPCR {s.npcr:.4f} "
                     f"(≥ {s.npcr_critical:.4f}), UACI {s.uaci:.4f} (in [{s.uaci_low:.4f}, "
                     f"{s.uaci_high:.4f}])   {_mark(s.passed)}")
    i, j, k = r.changed_sample
    lines.append(f"(plaintext change: sample ({i}, {j}, channel {k}) ±1; same key, salt and "
                 f"nonce; {r.seconds:.2f} s)")
    lines.append("overall: " + ("all checks pass" if r.passed else "some checks FAIL — at "
                 f"alpha = {r.alpha:g} an ideal cipher fails each test {r.alpha:.0%} of the time"))
    return "\n".join(lines)
