"""The report's pictures in docs/, taken in headless Chromium (Debian's chromium and chromium-driver) at 1100 px:

    oqtopus-export --demo demo-out && oqtopus-data report demo-out demo.html
    oqtopus-data fake-cloud &  # then, with its OQTOPUS_URL and OQTOPUS_API_TOKEN: oqtopus-export first-out
    oqtopus-data report first-out first.html
    python tests/report_screenshots.py demo.html first.html docs/

writes report.png (the page's top), report-drift.png (the drift section's top), report-devices.png (the devices
section) from the demo, and report-first-export.png (the devices section of a first export: no history yet).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

WIDTH = 1100


def _browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={WIDTH},1000",
                f"--user-data-dir={tempfile.mkdtemp(prefix='oqtopus-shots-')}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)


def shot(driver: webdriver.Chrome, page: Path, target: Path, height: int, section: str | None = None) -> None:
    """A WIDTH x height picture of `page` from its top, or from the top of the section with id `section`."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})
    driver.get(page.resolve().as_uri())
    if section:
        top = driver.find_element(By.ID, section).location["y"]
        driver.execute_script("window.scrollTo(0, arguments[0])", max(top - 8, 0))
    target.write_bytes(driver.get_screenshot_as_png())
    from PIL import Image  # 128 colours: a quarter of the bytes, no visible change for flat charts

    Image.open(target).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def main(demo: Path, first: Path, docs: Path) -> None:
    driver = _browser()
    try:
        shot(driver, demo, docs / "report.png", 1500)
        shot(driver, demo, docs / "report-drift.png", 880, "drift")
        shot(driver, demo, docs / "report-devices.png", 785, "devices")
        shot(driver, first, docs / "report-first-export.png", 420, "devices")
    finally:
        driver.quit()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
