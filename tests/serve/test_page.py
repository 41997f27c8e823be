"""The page works in a real browser: typing a prefix shows next-word suggestions, clicking
one takes it, and Generate streams text. Needs Chromium (CI installs Debian's); skips
cleanly where there is none."""

import shutil

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome"))
                 if p), None)
# Flags for a sandboxed, offline machine: no setuid sandbox, no GPU, no background network.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_the_page_suggests_and_generates(server, tmp_path):
    url, _ = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.fill("#prefix", "the company")
            page.wait_for_selector("#suggestions button.word", timeout=15000)
            words = page.locator("#suggestions button.word")
            assert words.count() == 8
            first = words.first.inner_text().split()[0]
            words.first.click()
            assert page.input_value("#prefix") == f"the company {first} "
            page.fill("#tokens", "12")
            page.click("#generate")
            page.wait_for_selector("#output[data-done='true']", timeout=30000)
            assert page.eval_on_selector("#output", "e => e.textContent.length") > 0
            assert page.inner_text("#status") == ""
            page.screenshot(path=str(tmp_path / "page.png"))
        finally:
            browser.close()
