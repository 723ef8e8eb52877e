"""Headless Chromium from the system's packages (Debian: chromium, chromium-driver), driven by Selenium."""

from __future__ import annotations

import os
import shutil
from typing import Any, Optional

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver", "chromium-driver")


def find(names: tuple[str, ...], env: str) -> Optional[str]:
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
        if os.path.exists(f"/usr/lib/chromium/{name}"):
            return f"/usr/lib/chromium/{name}"
    return None


def start_browser(chromium: str, driver: str, *, width: int = 1400, height: int = 900) -> Any:
    """A headless Chromium: no network beyond 127.0.0.1 is needed or used (the dashboard loads nothing external)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)
