"""Headless Chromium for the web page's test and screenshots.

It is always the system's browser and driver (Debian: ``apt-get install chromium
chromium-driver``), named by path so that Selenium Manager never downloads one.
``RECLLM_CHROMIUM`` / ``RECLLM_CHROMEDRIVER`` point elsewhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_paths() -> tuple[Path, Path]:
    """(browser, driver) to use."""
    browser = Path(os.environ.get("RECLLM_CHROMIUM", CHROMIUM))
    driver = Path(os.environ.get("RECLLM_CHROMEDRIVER", CHROMEDRIVER))
    return browser, driver


def missing_browser() -> str | None:
    """Why a headless Chromium cannot be started here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path in browser_paths():
        if not (path.is_file() and os.access(path, os.X_OK)):
            return (
                f"{path} not found: install the system browser and driver "
                "(apt-get install -y chromium chromium-driver)"
            )
    return None


def headless_chromium(width: int = 1200, height: int = 900) -> Any:
    """A Selenium driver of headless Chromium with a ``width`` x ``height`` window."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--user-data-dir={tempfile.mkdtemp(prefix='recllm-chromium-')}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(driver)))
