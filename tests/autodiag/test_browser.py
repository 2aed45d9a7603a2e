"""End to end in a real headless browser (Debian's chromium through its chromedriver, driven by
Selenium): a person fills the form with the keyboard and reads the answer, and axe-core (vendored,
never fetched) finds no serious or critical accessibility violation on any page they see."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
EXPLAIN = "//button[normalize-space()='Comment ce résultat est calculé']"
AXE = Path(__file__).parent / "assets" / "axe-core-4.14.1" / "axe.min.js"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="chromium and chromium-driver are not installed (.ci/run installs them)",
)


@pytest.fixture(scope="module")
def server(app):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started, "the test server did not start"
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1200,900")
    options.add_argument("--lang=fr-FR")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def axe_violations(driver) -> list[dict]:
    """Serious and critical axe-core violations of the page (WCAG 2.0/2.1 A and AA rules)."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}]));"
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["html"] for n in v["nodes"]][:3],
        }
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def click_and_wait(driver, element) -> None:
    """Click a submit button and wait for the next page (no JavaScript: a full page load).

    While the old page goes, chromedriver reports the old element either as stale or as "node does
    not belong to the document" (an unknown error): both mean the old document is gone.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element("tag name", "html")
    element.click()

    def old_page_gone(_driver) -> bool:
        try:
            old.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(driver, 20).until(old_page_gone)
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def fill_form(driver, base: str, occupation: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(base + "/")
    driver.find_element(By.ID, "metier").send_keys(occupation)
    driver.find_element(By.ID, "lieu").send_keys("Toulon")
    Select(driver.find_element(By.ID, "diplome")).select_by_visible_text("Bac + 2 (BTS, DUT…)")
    driver.find_element(By.ID, "mois").send_keys("4")
    driver.find_element(By.ID, "rayon").send_keys("30")
    driver.find_element(By.ID, "permis-non").click()
    driver.find_element(By.ID, "formation-oui").click()
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))


def test_a_person_fills_the_form_and_reads_the_answer(server, browser):
    from selenium.webdriver.common.by import By

    fill_form(browser, server, "aide soignant")
    # Several titles match: the page asks to choose, keeping every other answer.
    assert "Plusieurs métiers correspondent" in browser.page_source
    assert browser.find_element(By.ID, "lieu").get_attribute("value") == "Toulon"
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Votre diagnostic"
    chance = browser.find_element(By.CSS_SELECTOR, "p.big").text
    assert chance.endswith("%") and 0 <= int(chance.split()[0].rstrip("\u202f%")) <= 100
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Toulon" in body and "Obtenir le permis de conduire" in body
    similar = "55 % avaient un emploi six mois après (vraisemblablement entre 50 % et 60 %)"
    assert similar.replace(" %", "\u202f%") in body  # the person's cell of the released DP table
    assert browser.get_cookies() == []
    # The explanation owed under the CRPA, for this person, one click away.
    click_and_wait(browser, browser.find_element(By.XPATH, EXPLAIN))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Comment ce résultat est calculé"
    assert "Paramètres appliqués à votre situation" in browser.page_source


def test_the_form_can_be_filled_with_the_keyboard_alone(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server + "/")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)  # the skip link comes first
    assert browser.switch_to.active_element.text == "Aller au contenu"
    browser.find_element(By.ID, "metier").click()
    active = browser.switch_to.active_element
    active.send_keys("Aide-soignant / Aide-soignante en gériatrie", Keys.TAB, "Nice")
    assert browser.find_element(By.ID, "lieu").get_attribute("value") == "Nice"


def test_an_error_is_shown_in_french_next_to_the_field(server, browser):
    from selenium.webdriver.common.by import By

    fill_form(browser, server, "zzzqqq")
    summary = browser.find_element(By.CSS_SELECTOR, ".error-summary").text
    assert "Aucun métier du ROME ne correspond" in summary
    assert browser.find_element(By.ID, "metier").get_attribute("aria-invalid") == "true"


@pytest.mark.parametrize("page", ["form", "choices", "answer", "explanation", "counselor", "model", "error"])
def test_no_serious_or_critical_accessibility_violation(server, browser, page):
    from selenium.webdriver.common.by import By

    if page == "form":
        browser.get(server + "/")
    elif page == "model":
        browser.get(server + "/modele")
    elif page == "error":
        fill_form(browser, server, "zzzqqq")
    elif page == "counselor":
        browser.get(server + "/conseiller")
        browser.find_element(By.ID, "metier").send_keys("Aide-soignant / Aide-soignante en gériatrie")
        browser.find_element(By.ID, "lieu").send_keys("Gap")
        browser.find_element(By.ID, "mois").send_keys("2")
        browser.find_element(By.ID, "rayon").send_keys("10")
        browser.find_element(By.ID, "diplome").send_keys("B")
        browser.find_element(By.ID, "permis-oui").click()
        browser.find_element(By.ID, "formation-non").click()
        click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
        assert "Fiche du modèle" in browser.page_source
    else:
        fill_form(browser, server, "aide soignant")
        if page != "choices":
            click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
        if page == "explanation":
            click_and_wait(browser, browser.find_element(By.XPATH, EXPLAIN))
    assert axe_violations(browser) == []


def test_the_axe_check_does_find_violations(browser):
    """The check is not vacuous: a page without a language, a labelled field or text contrast fails it."""
    browser.get(
        "data:text/html;charset=utf-8,<html><body><input type=text>"
        "<p style='color:%23eee;background:%23fff'>illisible</p></body></html>"
    )
    found = {v["id"] for v in axe_violations(browser)}
    assert {"html-has-lang", "label", "color-contrast"} <= found
