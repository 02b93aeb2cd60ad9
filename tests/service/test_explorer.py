"""The web explorer at /ui, driven in a real headless Chromium against a real `vecdial serve`:
it asks for the API key, lists collections, searches by text and by vector under the budget
its controls build, shows hits, texts and the explain stages, and marks the setting on the
measured tradeoff."""

from __future__ import annotations

import json
import os
import shutil
from unittest import mock

import pytest

import vecdial

from .test_server_process import vecdial_serve

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (scripts/test.sh installs them)"
)
KEY = "explorer-test-key"


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,1000",
        f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def wait_for(driver, condition, seconds: float = 300):
    """Poll `condition(driver)` until truthy. Conditions find their elements afresh on each
    try, so a re-render that replaced an element (stale) just means: look again."""
    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d))


def click(driver, by: str, selector: str) -> None:
    """Find the element and click it, finding it again if a re-render replaced it in between."""
    wait_for(driver, lambda d: d.find_element(by, selector).click() or True)


def hit_rows(driver) -> list[list[str]]:
    """The hits table's cells, read in one script (no element kept across a possible re-render)."""
    return driver.execute_script("return [...document.querySelectorAll('#hits tbody tr')].map(r => [...r.cells].map(c => c.textContent))")


def set_control(driver, element_id: str, value) -> None:
    """What a person's drag or pick does: set the value, fire `input`."""
    driver.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('input'));",
        element_id,
        str(value),
    )


def search(driver) -> None:
    """Click Search and wait until this search's answer is shown (the old one is cleared first)."""
    driver.execute_script("document.querySelector('#hits tbody').innerHTML = ''; document.getElementById('explain').innerHTML = '';")
    click(driver, By.ID, "search")
    wait_for(
        driver,
        lambda d: (
            (d.find_elements(By.CSS_SELECTOR, "#hits tbody tr") and d.find_element(By.ID, "explain").text)
            or d.find_element(By.ID, "error").text
        ),
    )


def test_a_person_searches_and_compares_settings_in_the_explorer(browser, tiny_data_dir, tiny_dataset, tmp_path):
    vecdial.connect(tiny_data_dir).open("tiny").sweep(
        n=40, budgets=["binary:rescore=0", "binary:rescore=10", "dense:dim=64", "exact"], show_progress=False
    )
    with mock.patch.dict(os.environ, {"VECDIAL_API_KEY": KEY}), vecdial_serve(tiny_data_dir) as (client, _):
        browser.get(str(client.base_url) + "/ui/")
        wait_for(browser, lambda d: "API key" in d.find_element(By.ID, "error").text)  # the page itself is open; the data is not

        key = browser.find_element(By.ID, "api-key")
        key.send_keys(KEY)
        browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)
        wait_for(browser, lambda d: "300 vectors" in d.find_element(By.ID, "about").text)
        assert browser.find_element(By.ID, "collection").get_attribute("value") == "tiny"
        assert browser.find_elements(By.CSS_SELECTOR, "#plot circle")  # the sweep's points

        browser.find_element(By.ID, "query").send_keys(tiny_dataset.texts[7])
        set_control(browser, "mode", "exact")
        search(browser)
        first = hit_rows(browser)[0]
        shown = " ".join(first[3].replace("…", "").split())  # as rendered (long texts may fold behind "more")
        assert first[1] == str(tiny_dataset.ids[7]) and shown == " ".join(tiny_dataset.texts[7].split())
        assert "exact on v000001" in browser.find_element(By.ID, "explain").text

        set_control(browser, "mode", "binary")
        set_control(browser, "rescore", 10)
        assert browser.find_element(By.ID, "budget").text == "budget: binary:rescore=10"
        search(browser)
        explain = browser.find_element(By.ID, "explain").text
        assert "binary:bits=384" in explain and "rescore:dim=384" in explain
        assert browser.find_element(By.CSS_SELECTOR, "#plot circle.current").get_attribute("data-budget") == "binary:rescore=10"
        assert browser.find_element(By.ID, "setting").text.startswith("binary:rescore=10: calibrated recall@10 ")  # and its bound

        set_control(browser, "mode", "auto")
        set_control(browser, "target", 0.9)
        search(browser)
        assert "auto:target_recall=0.9 ->" in browser.find_element(By.ID, "explain").text
        assert "calibration:" in browser.find_element(By.ID, "explain").text

        query = browser.find_element(By.ID, "query")
        query.clear()
        # A vector is pasted, not typed: set the field's value as a paste does (typing ~8,000
        # characters one key event at a time took most of this test's time).
        browser.execute_script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))",
            query,
            json.dumps([float(v) for v in tiny_dataset.vectors[3]]),
        )
        set_control(browser, "mode", "exact")
        search(browser)
        assert hit_rows(browser)[0][1] == str(tiny_dataset.ids[3])
        browser.save_screenshot(str(tmp_path / "explorer.png"))

        query.clear()
        query.send_keys("[1, 2, oops]")
        search(browser)
        assert "not a JSON list of numbers" in browser.find_element(By.ID, "error").text
