"""Screenshots of the web page at ``/`` over a real bundle (docs/images/ui-*.png).

Starts ``recllm serve BUNDLE --threads 1`` on a free loopback port with a throw-away event
store, opens the page in headless Chromium (the system's, see ``recllm.serve.browser``),
picks ``--user``, waits for every reason, opens the facts of the first one, asks
``--query`` and saves the whole page. Not a timing: run it beside anything.

    python benchmarks/ui_screenshots.py runs/quickstart-bundle --user 196 \\
        --query "something like Toy Story but from the 90s, and tell me why" \\
        --out docs/images/ui-ml-100k.png --narrow docs/images/ui-ml-100k-narrow.png
    python benchmarks/ui_screenshots.py runs/bundles/beauty-student --user A240W3C2Z3WQCQ \\
        --query "mascaras like Maybelline Great Lash, and tell me why" \\
        --out docs/images/ui-amazon-beauty.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from recllm.serve.browser import headless_chromium, missing_browser
from recllm.serve.process import ServerProcess

WAIT = 300.0  # seconds for every reason of the top k (written and checked on the server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--user", required=True, help="a known user id of the bundle")
    parser.add_argument("--query", required=True, help="what to type in the ask box")
    parser.add_argument("--k", default="5", choices=["3", "5", "10", "20"])
    parser.add_argument("--out", type=Path, required=True, help="PNG of the wide page")
    parser.add_argument("--narrow", type=Path, help="also a PNG at phone width (390 px)")
    args = parser.parse_args()
    reason = missing_browser()
    if reason is not None:
        print(f"ui_screenshots: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "events.sqlite"
        with ServerProcess(args.bundle, store, "--threads", "1") as server:
            shots = [(args.out, 1280)] + ([(args.narrow, 390)] if args.narrow else [])
            for out, width in shots:
                shoot(server.url, args, out, width)
    return 0


def shoot(url: str, args: argparse.Namespace, out: Path, width: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = headless_chromium(width, 900)
    try:
        wait = WebDriverWait(driver, WAIT)
        driver.get(f"{url}/")
        wait.until(lambda d: d.find_element(By.ID, "about").text.startswith("Serving"))
        Select(driver.find_element(By.ID, "k")).select_by_value(args.k)
        driver.find_element(By.ID, "user-id").send_keys(args.user + "\n")
        wait.until(lambda d: _reasons_done(d))
        driver.find_element(By.CSS_SELECTOR, "#recs details.facts summary").click()
        driver.find_element(By.ID, "ask-text").send_keys(args.query + "\n")
        wait.until(lambda d: d.find_elements(By.ID, "ask-intent") or _error(d))
        if _error(driver):
            raise SystemExit(f"ui_screenshots: the page shows an error: {_error(driver)}")
        driver.execute_script("document.activeElement.blur()")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, int(height) + 40)
        driver.execute_script("window.scrollTo(0, 0)")
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
        print(f"wrote {out} ({width} px wide)")
    finally:
        driver.quit()


def _reasons_done(driver: Any) -> bool:
    from selenium.webdriver.common.by import By

    if _error(driver):
        raise SystemExit(f"ui_screenshots: the page shows an error: {_error(driver)}")
    cards = driver.find_elements(By.CSS_SELECTOR, "#recs li.card")
    return bool(cards) and not driver.find_elements(By.CSS_SELECTOR, "#recs .badge.pending")


def _error(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "error").text)


if __name__ == "__main__":
    sys.exit(main())
