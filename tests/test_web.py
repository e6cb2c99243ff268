"""The web page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = os.environ.get("STEGSHIELD_CHROMIUM", "/usr/bin/chromium")

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium)"
                " to run the browser test", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="the playwright Python package is missing")
pytest.importorskip("fastapi")

import uvicorn  # noqa: E402
from playwright.sync_api import Page, Route, expect, sync_playwright  # noqa: E402

from stegshield.analysis.synthetic import lsb_replace, synthetic_cover  # noqa: E402
from stegshield.crypto.kdf import TEST_KDF  # noqa: E402
from stegshield.server import ServerConfig, create_app  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    cfg = ServerConfig(detector="classical", kdf=TEST_KDF, workers=2)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(base_url: str) -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu",
                                           "--disable-dev-shm-usage"])
        pg = browser.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(base_url + "/")
        pg.wait_for_selector("body[data-ready='1']")
        yield pg
        browser.close()
        assert not errors, errors


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("web")
    rng = np.random.default_rng(0)
    cover = synthetic_cover(rng, (128, 128), channels=3)
    out = {"clean": d / "clean.png", "stego": d / "stego.png", "cover": d / "cover.png"}
    Image.fromarray(cover).save(out["clean"])
    Image.fromarray(lsb_replace(cover, 0.6, rng)).save(out["stego"])
    Image.fromarray(synthetic_cover(rng, (160, 160), channels=3)).save(out["cover"])
    return out


def test_page_scans_and_draws_heat_map(page: Page, images: dict[str, Path]) -> None:
    page.set_input_files("#scan-input", [str(images["clean"]), str(images["stego"])])
    page.wait_for_selector(".result[data-verdict='alert'] canvas[data-tiles]", timeout=20_000)
    assert page.locator(".result").count() == 2
    card = page.locator(".result[data-verdict='alert']")
    assert "stego.png" in card.inner_text()
    canvas = card.locator("canvas")
    assert canvas.get_attribute("data-tiles") == "4"  # 128 px -> 2x2 tiles of 64 px
    red_excess = canvas.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let r = 0, g = 0;
                  for (let i = 0; i < d.length; i += 4) { r += d[i]; g += d[i + 1]; }
                  return (r - g) / (d.length / 4); }""")
    assert red_excess > 30  # the heat map tints the flagged image red
    expect(page.locator("#scan-status")).to_contain_text("1 alert", timeout=10_000)


def test_page_hides_and_reveals(page: Page, images: dict[str, Path]) -> None:
    page.set_input_files("#hide-image", str(images["cover"]))
    page.fill("#hide-message", "meet me at the lighthouse")
    page.fill("#hide-password", "correct horse")
    page.click("#hide-button")
    page.wait_for_selector("#hide-download", timeout=20_000)
    assert page.get_attribute("#hide-download", "download") == "cover_stego.png"
    page.fill("#reveal-password", "correct horse")
    page.click("#reveal-button")
    expect(page.locator("#reveal-output")).to_have_text("meet me at the lighthouse",
                                                        timeout=20_000)
    page.fill("#reveal-password", "wrong")
    page.click("#reveal-button")
    page.wait_for_selector("#reveal-status.err", timeout=20_000)
    assert "no hidden data" in page.inner_text("#reveal-status")


def test_api_docs_render_offline(page: Page, base_url: str) -> None:
    """Swagger UI renders the API with every request to another origin blocked."""
    outside: list[str] = []
    errors: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith(base_url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    assert page.context.browser is not None
    context = page.context.browser.new_context()
    docs = context.new_page()
    docs.route("**/*", local_only)
    docs.on("pageerror", lambda exc: errors.append(str(exc)))
    docs.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    docs.goto(base_url + "/docs")
    docs.wait_for_selector(".opblock-summary-path[data-path='/v1/scan']", timeout=30_000)
    context.close()
    assert not outside, outside
    assert not errors, errors
