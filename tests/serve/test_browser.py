"""Why the page's browser test would be skipped: the reason names what is missing and how
to install it, so a machine without Chromium says so instead of failing obscurely."""

from __future__ import annotations

from pathlib import Path

import pytest

from recllm.serve.browser import browser_paths, missing_browser


def test_a_missing_browser_or_driver_is_named_with_the_install_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("selenium")
    absent = tmp_path / "no-chromium"
    monkeypatch.setenv("RECLLM_CHROMIUM", str(absent))
    assert browser_paths()[0] == absent
    reason = missing_browser()
    assert reason is not None and str(absent) in reason
    assert "apt-get install -y chromium chromium-driver" in reason

    not_executable = tmp_path / "chromedriver"
    not_executable.write_text("")
    monkeypatch.setenv("RECLLM_CHROMIUM", "/bin/sh")
    monkeypatch.setenv("RECLLM_CHROMEDRIVER", str(not_executable))
    reason = missing_browser()
    assert reason is not None and str(not_executable) in reason
