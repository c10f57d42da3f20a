"""The interactive-translation page, end to end in headless Chromium (Selenium) against a real server.

Skips cleanly when Chromium, its driver or Selenium are missing (CI installs ``chromium chromium-driver``).
Set ``BAYLING_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium and chromedriver are not installed")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--window-size=1280,900",
    ):
        opts.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def wait_for(driver, js: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script("return " + js)
        if value:
            return value
        time.sleep(0.05)
    state = driver.execute_script(
        "return [document.body.dataset.state, document.getElementById('status').textContent]"
    )
    raise AssertionError(f"timed out waiting for {js!r}; page state {state}")


def messages(driver) -> list[dict]:
    return driver.execute_script("return window.bayling.messages")


def transcript(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#transcript .msg .body')].map(e => e.textContent)"
    )


def ink_fraction(png: bytes) -> float:
    """Share of pixels that differ clearly from the image's most common colour (its background)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("L")
    hist = img.histogram()
    bg = max(range(256), key=hist.__getitem__)
    return sum(n for v, n in enumerate(hist) if abs(v - bg) > 60) / (img.width * img.height)


def save(name: str, png: bytes, tmp_path: Path) -> None:
    out = Path(os.environ.get("BAYLING_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(png)


def test_translate_refine_stop_in_browser(browser, make_server, tiny_engine, tmp_path):
    url = make_server(tiny_engine, max_new_tokens=400)
    d = browser
    d.get(url + "/")
    wait_for(d, "document.body.dataset.state === 'idle'")
    assert d.find_element("id", "model").text == "model: tiny"
    assert d.execute_script("return document.querySelectorAll('#tgt-lang option').length") > 204  # common + all

    # translate: the canonical prompt plus the glossary instruction, answer streamed piece by piece
    d.find_element("id", "source").send_keys("The station is near the old bridge.")
    d.execute_script("document.getElementById('src-lang').value = 'eng_Latn'")
    d.execute_script("document.getElementById('tgt-lang').value = 'deu_Latn'")
    d.find_element("id", "glossary").send_keys("station = Bahnhof")
    d.find_element("id", "max-tokens").clear()
    d.find_element("id", "max-tokens").send_keys("24")
    d.find_element("id", "translate").click()
    wait_for(d, "document.body.dataset.state === 'idle' && window.bayling.messages.length === 2")
    msgs = messages(d)
    assert msgs[0]["content"] == (
        "Translate the following English text into German.\nThe station is near the old bridge.\n"
        'Make sure the translation uses "Bahnhof" for "station".'
    )
    answer = msgs[1]["content"]
    assert answer and d.find_element("id", "result").text.strip() == answer
    assert d.execute_script("return window.bayling.chunks") > 3  # it arrived as a stream
    assert "Done in" in d.find_element("id", "status").text

    # refine in chat turns: the follow-ups are the interactive-translation templates
    d.find_element("css selector", ".refine-btn[data-kind=formal]").click()
    wait_for(d, "document.body.dataset.state === 'idle' && window.bayling.messages.length === 4")
    d.find_element("id", "term-src").send_keys("bridge")
    d.find_element("id", "term-tgt").send_keys("Brücke")
    d.find_element("id", "keep-term").click()
    wait_for(d, "document.body.dataset.state === 'idle' && window.bayling.messages.length === 6")
    d.find_element("id", "followup").send_keys("Use British spelling.")
    d.find_element("id", "send").click()
    wait_for(d, "document.body.dataset.state === 'idle' && window.bayling.messages.length === 8")
    users = [m["content"] for m in messages(d) if m["role"] == "user"]
    assert users[1:] == [
        "Make it more formal.",
        'Make sure the translation uses "Brücke" for "bridge".',
        "Use British spelling.",
    ]
    assert transcript(d) == [m["content"] for m in messages(d)]

    shot = d.get_screenshot_as_png()
    save("web_translate.png", shot, tmp_path)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    assert ink_fraction(d.find_element("id", "result").screenshot_as_png) > 0.002  # the translation is drawn
    assert ink_fraction(d.find_element("id", "transcript").screenshot_as_png) > 0.002

    # a server-side 4xx is shown, and the conversation stays well-formed
    d.find_element("id", "max-tokens").clear()
    d.find_element("id", "max-tokens").send_keys("100000")
    d.find_element("css selector", ".refine-btn[data-kind=short]").click()
    wait_for(d, "document.body.dataset.state === 'error'")
    assert "over this server's limit of 400" in d.find_element("id", "status").text
    assert len(messages(d)) == 8

    # stop mid-stream (a new conversation: 400 new tokens fill the tiny model's 512-token context)
    d.find_element("id", "clear").click()
    d.find_element("id", "glossary").clear()
    d.find_element("id", "max-tokens").clear()
    d.find_element("id", "max-tokens").send_keys("400")
    d.find_element("id", "translate").click()
    wait_for(d, "window.bayling.messages.length === 1 && document.getElementById('result').textContent.length > 0")
    d.find_element("id", "stop").click()
    wait_for(d, "document.body.dataset.state === 'idle'")
    assert d.find_element("id", "status").text == "Stopped."
    assert [m["role"] for m in messages(d)] == ["user", "assistant"]  # the partial answer is kept
    deadline = time.monotonic() + 10
    while httpx.get(url + "/health").json()["queue"].get("cancelled_streams", 0) < 1:
        assert time.monotonic() < deadline, "the server kept generating after the browser stopped"
        time.sleep(0.05)


def test_page_asks_for_api_key(browser, make_server, tiny_engine, tmp_path):
    url = make_server(tiny_engine, api_key="k3y")
    d = browser
    d.execute_script("localStorage.clear()") if d.current_url.startswith(url) else None
    d.get(url + "/")
    wait_for(d, "document.body.dataset.state === 'error'")
    assert "API key" in d.find_element("id", "status").text
    assert d.find_element("id", "key-box").is_displayed()
    d.find_element("id", "api-key").send_keys("k3y")
    d.find_element("id", "save-key").click()
    wait_for(d, "document.body.dataset.state === 'idle'")
    d.find_element("id", "source").send_keys("Good morning.")
    d.find_element("id", "translate").click()
    wait_for(d, "document.body.dataset.state === 'idle' && window.bayling.messages.length === 2")
    save("web_api_key.png", d.get_screenshot_as_png(), tmp_path)
