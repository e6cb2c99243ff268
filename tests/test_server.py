"""HTTP API: scan, hide/reveal, limits, token, concurrency (in-process and over loopback)."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx
import uvicorn
from click.testing import CliRunner

with warnings.catch_warnings():  # starlette warns that httpx-based TestClient is deprecated
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from PIL import Image

from stegshield.analysis.synthetic import lsb_replace, synthetic_cover
from stegshield.crypto.container import Payload
from stegshield.crypto.kdf import TEST_KDF
from stegshield.server import ServerConfig, create_app

SCAN_KEYS = {"path", "score", "verdict", "payload_bpp", "detectors", "sha256", "error"}


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _cover(seed: int = 0, size: int = 128) -> np.ndarray:
    return synthetic_cover(np.random.default_rng(seed), (size, size), channels=3)


CLEAN = _png(_cover(1))
STEGO = _png(lsb_replace(_cover(2), 0.6, np.random.default_rng(0)))


def _config(**kw: object) -> ServerConfig:
    base: dict[str, object] = {"detector": "classical", "kdf": TEST_KDF, "workers": 2}
    base.update(kw)
    return ServerConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(_config())) as c:
        yield c


def test_healthz_and_openapi(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert {"/v1/scan", "/v1/hide", "/v1/reveal", "/healthz"} <= spec["paths"].keys()
    assert "multipart/form-data" in spec["paths"]["/v1/scan"]["post"]["requestBody"]["content"]


def test_docs_work_offline(client: TestClient) -> None:
    """/docs references only this server; its script, style and icon are served."""
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", page.text)  # no other origin
    assert "default-src 'self'" in page.headers["content-security-policy"]
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'",
                                                                          page.text)
    assert "/openapi.json" in refs
    assert any(r.endswith("swagger-ui-bundle.js") for r in refs)
    assert any(r.endswith("swagger-ui.css") for r in refs)
    for ref in refs:
        assert ref.startswith("/"), ref
        asset = client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 100, ref
    assert '"validatorUrl": null' in page.text  # Swagger UI would call validator.swagger.io
    assert client.get("/redoc").status_code == 404  # FastAPI's CDN-based page is off


def test_docs_with_token() -> None:
    """Docs stay readable without the token; the spec declares it for "Try it out"."""
    with TestClient(create_app(_config(token="s3cret"))) as c:
        assert c.get("/docs").status_code == 200
        spec = c.get("/openapi.json").json()
        assert {"bearer", "apiToken"} <= spec["components"]["securitySchemes"].keys()
        assert spec["paths"]["/v1/scan"]["post"]["security"] == [{"bearer": []},
                                                                 {"apiToken": []}]
        assert "security" not in spec["paths"]["/healthz"]["get"]
        assert c.post("/v1/scan", files={"files": ("a.png", CLEAN)}).status_code == 401
    with TestClient(create_app(_config())) as c:
        assert "securitySchemes" not in c.get("/openapi.json").json().get("components", {})


def test_scan_several_images(client: TestClient) -> None:
    files = [("files", ("clean.png", CLEAN, "image/png")),
             ("files", ("stego.png", STEGO, "image/png")),
             ("files", ("junk.png", b"junk", "image/png"))]
    r = client.post("/v1/scan", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    results = {x["path"]: x for x in body["results"]}
    assert all(x.keys() >= SCAN_KEYS for x in results.values())
    assert results["clean.png"]["verdict"] != "alert"
    assert results["stego.png"]["verdict"] == "alert"
    assert results["junk.png"]["verdict"] == "error"
    assert "heatmap" not in results["stego.png"]
    r = client.post("/v1/scan?heatmap=true", files={"file": ("s.png", STEGO, "image/png")})
    hm = r.json()["results"][0]["heatmap"]
    assert hm["rows"] == 2 and hm["cols"] == 2 and hm["tile"] == 64


def test_scan_rejects_bad_requests(client: TestClient) -> None:
    assert client.post("/v1/scan", data={"x": "1"}).status_code in (415, 422)
    assert client.post("/v1/scan", content=b"raw", headers={
        "content-type": "application/octet-stream"}).status_code == 415
    r = client.post("/v1/scan?detector=bogus", files={"files": ("a.png", CLEAN)})
    assert r.status_code == 422 and "unknown detector" in r.json()["detail"]


def test_hide_reveal_roundtrip(client: TestClient) -> None:
    cover = _png(_cover(3, 160))
    r = client.post("/v1/hide", files={"image": ("c.png", cover, "image/png")},
                    data={"message": "meet at 6", "password": "pw"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert int(r.headers["x-stegshield-payload-bytes"]) == 9
    assert "x-stegshield-notes" not in r.headers  # nothing to warn about
    # the warnings the command line prints (here: a rate above the default, a JPEG cover)
    buf = io.BytesIO()
    Image.fromarray(_cover(3, 160)).save(buf, "JPEG", quality=95)
    warned = client.post("/v1/hide", files={"image": ("c.jpg", buf.getvalue())},
                         data={"message": "x", "password": "pw", "rate": "0.3"})
    notes = warned.headers.get("x-stegshield-notes", "")
    assert warned.status_code == 200 and "rate 0.3" in notes and "JPEG-compressed" in notes
    stego = r.content
    ok = client.post("/v1/reveal", files={"image": ("s.png", stego)}, data={"password": "pw"})
    assert ok.status_code == 200 and ok.json()["text"] == "meet at 6"
    wrong = client.post("/v1/reveal", files={"image": ("s.png", stego)},
                        data={"password": "nope"})
    assert wrong.status_code == 404
    payload = client.post("/v1/hide", files={"image": ("c.png", cover),
                                             "payload": ("a.bin", b"\x00\x01\x02")},
                          data={"password": "pw", "format": "webp"})
    assert payload.status_code == 200 and payload.headers["content-type"] == "image/webp"
    out = client.post("/v1/reveal", files={"image": ("s.webp", payload.content)},
                      data={"password": "pw"}).json()
    assert out["name"] == "a.bin" and out["data_base64"] == "AAEC"


def test_hide_errors_are_one_line(client: TestClient) -> None:
    gif = io.BytesIO()
    Image.fromarray(_cover(4)).convert("P").save(gif, "GIF")
    r = client.post("/v1/hide", files={"image": ("p.gif", gif.getvalue())},
                    data={"message": "x", "password": "pw"})
    assert r.status_code == 422 and "p.gif" in r.json()["detail"]
    assert client.post("/v1/hide", files={"image": ("c.png", CLEAN)},
                       data={"message": "x"}).status_code == 422
    big = client.post("/v1/hide", files={"image": ("c.png", CLEAN)},
                      data={"message": np.random.default_rng(0).bytes(20_000).hex(),
                            "password": "pw"})
    assert big.status_code == 422 and "too large" in big.json()["detail"]


def test_encrypt_decrypt_when_cipher_exists(client: TestClient) -> None:
    from stegshield.server.app import cipher_available

    if not cipher_available():
        pytest.skip("stegshield.cipher has no encrypt_image/decrypt_image yet")
    plain = _png(_cover(7, 64))
    enc = client.post("/v1/encrypt", files={"image": ("p.png", plain)},
                      data={"password": "pw"})
    assert enc.status_code == 200, enc.text
    assert enc.headers["content-type"] == "image/png" and enc.content != plain
    dec = client.post("/v1/decrypt", files={"image": ("c.png", enc.content)},
                      data={"password": "pw"})
    assert dec.status_code == 200
    back = np.asarray(Image.open(io.BytesIO(dec.content)))
    assert np.array_equal(back, np.asarray(Image.open(io.BytesIO(plain))))
    wrong = client.post("/v1/decrypt", files={"image": ("c.png", enc.content)},
                        data={"password": "nope"})
    assert wrong.status_code == 403
    notcipher = client.post("/v1/decrypt", files={"image": ("p.png", plain)},
                            data={"password": "pw"})
    assert notcipher.status_code == 422 and "p.png" in notcipher.json()["detail"]


def test_limits_and_token(tmp_path: Path) -> None:
    cfg = _config(token="s3cret", max_upload_bytes=40_000, max_pixels=100 * 100,
                  save_uploads=tmp_path)
    with TestClient(create_app(cfg)) as c:
        assert c.get("/healthz").json()["auth"] is True
        assert c.get("/healthz").json()["save_uploads"] is True  # the page says so
        files = {"files": ("a.png", CLEAN)}
        assert c.post("/v1/scan", files=files).status_code == 401
        # the token before query validation: no 422 (and its details) for a caller without it
        assert c.post("/v1/scan?heatmap=zzz", files=files).status_code == 401
        bad = c.post("/v1/scan", files=files, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        ok = c.post("/v1/scan", files=files, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert "exceeds the limit" in ok.json()["results"][0]["error"]  # 128x128 > 100x100
        big = _png(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8))
        r = c.post("/v1/scan", files={"files": ("b.png", big)}, headers={"X-API-Token": "s3cret"})
        assert r.status_code == 413
        assert len(list(tmp_path.iterdir())) == 1  # save_uploads keeps the scanned upload


def test_uploads_not_written_to_disk(client: TestClient, monkeypatch: pytest.MonkeyPatch
                                     ) -> None:
    import tempfile

    def no_temp(*a: object, **k: object) -> None:
        raise AssertionError("upload spooled to disk")

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", no_temp)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_temp)
    big = _png(_cover(5, 900))  # > 1 MiB, Starlette would spool this
    assert len(big) > 1024 * 1024
    r = client.post("/v1/scan", files={"files": ("big.png", big)})
    assert r.status_code == 200 and r.json()["results"][0]["error"] is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_concurrent_clients_over_loopback() -> None:
    """20 concurrent clients all succeed, and /healthz stays fast while they run."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(_config()), host="127.0.0.1",
                                           port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    img = _png(_cover(6, 256))

    async def load() -> tuple[list[int], float]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as ac:
            async def one() -> int:
                r = await ac.post("/v1/scan", files={"files": ("x.png", img)})
                return r.status_code

            tasks = [asyncio.create_task(one()) for _ in range(20)]
            await asyncio.sleep(0.05)
            t0 = time.perf_counter()
            assert (await ac.get("/healthz")).status_code == 200
            health = time.perf_counter() - t0
            return list(await asyncio.gather(*tasks)), health

    try:
        codes, health = asyncio.run(load())
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert codes == [200] * 20
    assert health < 1.0


def test_serve_command_help_and_validation() -> None:
    from stegshield.scan.commands import serve

    res = CliRunner().invoke(serve, ["--help"])
    assert res.exit_code == 0 and "--host" in res.output and "127.0.0.1" in res.output
    res = CliRunner().invoke(serve, ["--fpr", "0.1", "--threshold", "0.5"])
    assert res.exit_code == 2 and "stegshield: error:" in res.stderr


def _gray(alpha: bool = False) -> bytes:
    """A small grayscale cover (gray+alpha with ``alpha``) as PNG."""
    gray = synthetic_cover(np.random.default_rng(8), (64, 64))
    if not alpha:
        return _png(gray)
    buf = io.BytesIO()
    Image.fromarray(np.dstack([gray, np.full_like(gray, 255)]), "LA").save(buf, "PNG")
    return buf.getvalue()


def test_hide_refuses_formats_that_lose_the_message(client: TestClient) -> None:
    """WebP has no grayscale mode and BMP no alpha: 422 with the CLI's reasons, not a stego
    image that cannot be revealed (or a 500)."""
    cases = [(_gray(), "webp", "WebP has no grayscale mode"),
             (_gray(alpha=True), "webp", "WebP has no grayscale mode"),
             (_gray(alpha=True), "bmp", "BMP readers drop the alpha channel")]
    for cover, fmt, reason in cases:
        r = client.post("/v1/hide", files={"image": ("g.png", cover)},
                        data={"message": "x", "password": "pw", "format": fmt})
        assert r.status_code == 422, (fmt, r.text)
        detail = r.json()["detail"]
        assert reason in detail and "g.png" in detail and "\n" not in detail
        assert "; use png" in detail  # the API's format names, not file extensions
    ok = client.post("/v1/hide", files={"image": ("g.png", _gray())},
                     data={"message": "x", "password": "pw", "format": "bmp"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/bmp"
    back = client.post("/v1/reveal", files={"image": ("s.bmp", ok.content)},
                       data={"password": "pw"})
    assert back.status_code == 200 and back.json()["text"] == "x"


def test_form_fields_that_are_not_utf8(client: TestClient) -> None:
    """Password and message bytes are used as given (as on the command line); other fields
    that are not UTF-8 are a 422 naming the field."""
    cover = _png(_cover(3, 64))
    for name in ("rate", "cost", "format"):
        data: dict[str, str | bytes] = {"message": "x", "password": "pw", name: b"\xff\xfe"}
        r = client.post("/v1/hide", files={"image": ("c.png", cover)}, data=data)
        assert r.status_code == 422, (name, r.text)
        assert r.headers["content-type"] == "application/json"
        assert f"'{name}'" in r.json()["detail"] and "UTF-8" in r.json()["detail"]
    latin1 = "\u00e9t\u00e9".encode("latin-1")
    r = client.post("/v1/hide", files={"image": ("c.png", cover)},
                    data={"message": b"caf\xe9", "password": latin1})
    assert r.status_code == 200, r.text
    out = client.post("/v1/reveal", files={"image": ("s.png", r.content)},
                      data={"password": latin1})
    assert out.status_code == 200 and out.json()["size"] == 4
    utf8 = client.post("/v1/reveal", files={"image": ("s.png", r.content)},
                       data={"password": "\u00e9t\u00e9"})
    assert utf8.status_code == 404  # other bytes, other key


def test_save_uploads_survives_races_and_a_missing_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An upload saved meanwhile by a parallel request is fine; a failed save is a warning
    and the scan is still answered."""
    from stegshield.server import app as app_module

    real_write = app_module.atomic_write

    def racing_write(path: Path, data: bytes, force: bool = False) -> None:
        Path(path).write_bytes(data)  # a parallel request with the same file got there first
        real_write(path, data, force)

    saved = tmp_path / "saved"
    saved.mkdir()
    with TestClient(create_app(_config(save_uploads=saved))) as c:
        monkeypatch.setattr(app_module, "atomic_write", racing_write)
        r = c.post("/v1/scan", files={"files": ("a.png", CLEAN)})
        assert r.status_code == 200 and r.json()["results"][0]["error"] is None
        assert len(list(saved.iterdir())) == 1
        monkeypatch.setattr(app_module, "atomic_write", real_write)
        for f in saved.iterdir():
            f.unlink()
        saved.rmdir()  # deleted while the server runs
        with caplog.at_level("WARNING"):
            r = c.post("/v1/scan", files={"files": ("b.png", STEGO)})
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["verdict"] == "alert"
        assert any("b.png" in m and "not saved" in m for m in caplog.messages)


def test_serve_startup_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    from stegshield.scan.commands import serve

    def no_run(*a: object, **k: object) -> None:
        raise AssertionError("uvicorn.run reached")

    monkeypatch.setattr(uvicorn, "run", no_run)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad_token = tmp_path / "token"
    bad_token.write_bytes(b"\xff\xfe secret")
    accented = tmp_path / "token2"  # valid UTF-8, but no HTTP client could ever send it
    accented.write_text("s\u00e9same", encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for args, what in [(["--save-uploads", str(blocker / "sub")], "--save-uploads"),
                           (["--token-file", str(bad_token)], "--token-file"),
                           (["--token-file", str(accented)], "printable ASCII"),
                           (["--port", port], port)]:
            res = CliRunner().invoke(serve, ["--detector", "classical", *args])
            assert res.exit_code == 2, (args, res.output, res.exception)
            assert res.stderr.startswith("stegshield: error:") and what in res.stderr
            assert res.stderr.count("\n") == 1, res.stderr


def test_validation_errors_are_one_line(client: TestClient) -> None:
    """Bad query parameters answer ``{"detail": "one line"}``; scan errors give no CLI hint."""
    r = client.post("/v1/scan?heatmap=abc", files={"files": ("a.png", CLEAN)})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "heatmap" in detail and "\n" not in detail
    with TestClient(create_app(_config(max_pixels=100 * 100))) as c:
        err = c.post("/v1/scan", files={"files": ("a.png", CLEAN)}).json()["results"][0]["error"]
    assert "exceeds the limit" in err and "--max-pixels" not in err


def test_scanner_is_built_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a detector (seconds for a learned one) runs in a worker thread."""
    from stegshield.server import app as app_module

    on_loop: list[bool] = []

    class SpyScanner(app_module.Scanner):  # type: ignore[name-defined,misc]
        def __init__(self, *a: object, **k: object) -> None:
            try:
                asyncio.get_running_loop()
                on_loop.append(True)
            except RuntimeError:
                on_loop.append(False)
            super().__init__(*a, **k)

    monkeypatch.setattr(app_module, "Scanner", SpyScanner)
    with TestClient(create_app(_config())) as c:
        assert c.post("/v1/scan", files={"files": ("a.png", CLEAN)}).status_code == 200
    assert on_loop == [False]


def test_forged_cipher_header_cannot_demand_a_costly_kdf() -> None:
    """The Argon2id cost in a cipher-image header is not authenticated before use: a forged
    header could make each /v1/decrypt spend gigabytes and minutes.  Above the server's own
    profile it is refused (422) before any derivation."""
    from dataclasses import replace as dc_replace

    from stegshield.cipher import api as capi
    from stegshield.cipher.errors import CipherError
    from stegshield.crypto.kdf import KdfParams

    pixels = _cover(4, 32)
    enc = capi.encrypt_array(pixels, "RGB", password=b"pw", kdf=TEST_KDF)
    heavy = dc_replace(enc.header, kdf=KdfParams(time_cost=64, memory_kib=4 << 20,
                                                 parallelism=64))
    with pytest.raises(CipherError, match="more than allowed"):
        capi.decrypt_array(enc.pixels, heavy, password=b"pw", max_kdf=TEST_KDF)
    ok = capi.decrypt_array(enc.pixels, enc.header, password=b"pw", max_kdf=TEST_KDF)
    assert np.array_equal(ok.pixels, pixels)
    with TestClient(create_app(_config())) as c:
        png = capi.encode_cipher_image(dc_replace(enc, header=heavy))
        r = c.post("/v1/decrypt", files={"image": ("c.png", png)}, data={"password": "pw"})
    assert r.status_code == 422 and "more than allowed" in r.json()["detail"]


def test_reveal_returns_at_most_an_upload_worth_and_non_utf8_text_exactly() -> None:
    """A 10 MB upload could inflate to a 512 MiB payload, base64-encoded into one response;
    and a Latin-1 message came back with its bytes replaced."""
    from stegshield.stego.embed import hide_array

    big, _ = hide_array(_cover(5, 160), "RGB", Payload(bytes(300_000), is_text=False), b"pw",
                        kdf=TEST_KDF)
    latin, _ = hide_array(_cover(6, 160), "RGB", Payload(b"caf\xe9", is_text=True), b"pw",
                          kdf=TEST_KDF)
    with TestClient(create_app(_config(max_upload_bytes=200_000))) as c:
        r = c.post("/v1/reveal", files={"image": ("s.png", _png(big))}, data={"password": "pw"})
        assert r.status_code == 422 and "inflates beyond 200,000 bytes" in r.json()["detail"]
        r = c.post("/v1/reveal", files={"image": ("s.png", _png(latin))},
                   data={"password": "pw"}).json()
    assert r["text"] == "caf\ufffd" and base64.b64decode(r["data_base64"]) == b"caf\xe9"


def test_cross_site_requests_rebinding_and_bad_multipart_are_refused(tmp_path: Path) -> None:
    """From a web-security review: a page of another origin could drive every /v1 route of
    a server without a token (and fill --save-uploads with its own .html files); any Host
    was accepted (DNS rebinding); a boundary over 256 characters gave a 500; a body without
    its closing boundary silently lost its last part."""
    saved = tmp_path / "saved"
    saved.mkdir()
    cfg = _config(save_uploads=saved, allowed_hosts=("testserver", "127.0.0.1"))
    with TestClient(create_app(cfg)) as c:
        files = {"files": ("a.png", CLEAN)}
        r = c.post("/v1/scan", files=files, headers={"Origin": "http://127.0.0.1:9999"})
        assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
        r = c.post("/v1/scan", files=files, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        assert c.post("/v1/scan", files=files, headers={"Origin": "http://testserver"}
                      ).status_code == 200  # the page itself
        assert c.post("/v1/scan", files={"files": ("x.html", b"<script>hi</script>")}
                      ).status_code == 200
        assert sorted(p.suffix for p in saved.iterdir()) == [".bin", ".png"]  # not .html
        assert c.get("/healthz", headers={"Host": "attacker.example"}).status_code == 400
        long = "a" * 300
        r = c.post("/v1/scan", content=b"x",
                   headers={"Content-Type": f"multipart/form-data; boundary={long}"})
        assert r.status_code == 400 and "malformed" in r.json()["detail"]
        body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n"
                b"\r\n" + CLEAN + b"\r\n--b\r\nContent-Disposition: form-data; "
                b"name=\"files\"; filename=\"b.png\"\r\n\r\n" + CLEAN[:100])
        r = c.post("/v1/scan", content=body,
                   headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert r.status_code == 400 and "closing boundary" in r.json()["detail"]


def test_slow_clients_are_cut_off() -> None:
    """A client sending its headers a byte at a time held its connection for ever (uvicorn
    has no header timeout), and a stalled upload held its memory: a few hundred of either
    left the server without file descriptors."""
    from stegshield.server.protocol import timed_h11

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(_config(body_timeout=0.6)),
                                           host="127.0.0.1", port=port, log_level="error",
                                           http=timed_h11(0.6)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    try:
        def talk(data: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(data)
                got = b""
                while chunk := s.recv(65536):  # until the server closes
                    got += chunk
                return got

        t0 = time.perf_counter()
        assert talk(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ") == b""
        assert time.perf_counter() - t0 < 4
        body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.png\""
                b"\r\n\r\n\x89PNG")
        stalled = talk(b"POST /v1/scan HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                       b"multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
                       + body)
        assert stalled.startswith(b"HTTP/1.1 408") and b"not received within" in stalled
        # a response sent before the body is read (here a route that never reads one) left
        # the body free to trickle for ever, and with it the connection
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Length: 1000000000\r\n\r\n")
            t0, got, closed = time.perf_counter(), b"", False
            while time.perf_counter() - t0 < 4 and not closed:
                try:
                    s.sendall(b"x")
                    s.settimeout(0.2)
                    chunk = s.recv(65536)
                    got, closed = got + chunk, not chunk
                except TimeoutError:
                    pass
                except OSError:
                    closed = True
            assert closed, "a trickled body outlived the response"
        # a prompt client on a kept-alive connection is served as before
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            for _ in range(2):
                assert c.get("/healthz").status_code == 200
                time.sleep(0.3)
    finally:
        server.should_exit = True
        thread.join(10)
