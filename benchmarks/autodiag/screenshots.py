"""Screenshots of the autodiagnostic service for docs/: the form, the answer, the explanation page,
the counselor's view and the similar-profiles section, taken in Debian's headless chromium on a
real study folder.

Run by hand after `make demo` (and `make similaires` for the released table):
    PYTHONPATH=. .venv/bin/python benchmarks/autodiag/screenshots.py --study runs/demo
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from autodiag.service import open_study
from autodiag.web import create_app

DOCS = Path(__file__).resolve().parents[2] / "docs"
WIDTH = 1100


def serve(study: Path) -> tuple[uvicorn.Server, str]:
    opened = open_study(study)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(opened.model, opened.gate, similar=opened.similar),
            host="127.0.0.1",
            port=port,
            access_log=False,
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def shoot(driver: webdriver.Chrome, name: str) -> None:
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(int(height) + 40, 6000))
    path = DOCS / name
    driver.save_screenshot(str(path))
    print(f"saved {path}")
    driver.set_window_size(WIDTH, 900)


def submit(driver: webdriver.Chrome, selector: str = "form button[type=submit]") -> None:
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()
    WebDriverWait(driver, 20).until(expected_conditions.staleness_of(old))


def fill(driver: webdriver.Chrome, base: str, path: str = "/") -> None:
    driver.get(base + path)
    driver.find_element(By.ID, "metier").send_keys("Aide-soignant / Aide-soignante en gériatrie")
    driver.find_element(By.ID, "lieu").send_keys("Toulon")
    Select(driver.find_element(By.ID, "diplome")).select_by_value("bac")
    driver.find_element(By.ID, "mois").send_keys("9")
    driver.find_element(By.ID, "rayon").send_keys("25")
    driver.find_element(By.ID, "permis-non").click()
    driver.find_element(By.ID, "formation-non").click()
    driver.find_element(By.ID, "precedent").send_keys("Agent / Agente de service hospitalier")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=Path("runs/demo"))
    args = parser.parse_args()
    server, base = serve(args.study)
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--lang=fr-FR"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.set_window_size(WIDTH, 900)
        fill(driver, base)
        shoot(driver, "autodiag-formulaire.png")
        submit(driver)
        if "Plusieurs" in driver.page_source:  # the previous occupation needs a choice
            submit(driver)
        shoot(driver, "autodiag-reponse.png")
        section = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=similaires-titre]")
        driver.execute_script("arguments[0].scrollIntoView(); document.activeElement.blur();", section)
        section.screenshot(str(DOCS / "autodiag-profils-similaires.png"))
        print(f"saved {DOCS / 'autodiag-profils-similaires.png'}")
        submit(driver, ".actions form[action='/comment'] button")
        shoot(driver, "autodiag-explication.png")
        fill(driver, base, "/conseiller")
        submit(driver)
        if "Plusieurs" in driver.page_source:
            submit(driver)
        shoot(driver, "autodiag-conseiller.png")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main()
