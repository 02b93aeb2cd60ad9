"""The explorer's Features panel, in a real headless Chromium against a real `vecdial serve`:
a collection with sparse codes lists its labelled features, a label word finds them, one
click steers the search by a feature, and hits show the features they share with the query."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vecdial

from .test_explorer import CHROMEDRIVER, CHROMIUM, browser, click, hit_rows, search, wait_for  # noqa: F401 (browser: a fixture)
from .test_server_process import vecdial_serve

pytest.importorskip("torch")
pytest.importorskip("sklearn")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (scripts/test.sh installs them)"
)


def feature_rows(driver) -> list[list[str]]:
    """The Features table's cells, read in one script (a re-render between reads would leave stale elements)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#feature-list tbody tr')].map(r => [...r.cells].map(c => c.innerText))"
    )


def browse(driver, words: str) -> None:
    """Type `words` into the features' search and click Browse; the old list is cleared
    first, so the waits after this see only the list this browse renders."""
    field = driver.find_element(By.ID, "feature-query")
    field.clear()
    if words:
        field.send_keys(words)
    driver.execute_script("document.querySelector('#feature-list tbody').innerHTML = ''")
    click(driver, By.ID, "browse")


def test_a_person_browses_features_and_steers_by_one(browser, tmp_path, demo_dataset):  # noqa: F811
    rows = slice(0, 600)
    vecdial.connect(tmp_path / "data").create(
        "docs",
        np.asarray(demo_dataset.vectors[rows]),
        texts=demo_dataset.texts[rows],
        ids=demo_dataset.ids[rows],
        source_model=demo_dataset.source_model,
        settings={"sparse": {"max_active": 16, "hidden_mult": 2, "min_steps": 60}},
        show_progress=False,
    )
    with vecdial_serve(tmp_path / "data") as (client, _):
        browser.get(str(client.base_url) + "/ui/")
        wait_for(browser, lambda d: "600 vectors" in d.find_element(By.ID, "about").text)  # loaded: features, sweep, controls
        assert browser.find_element(By.ID, "features").is_displayed() and browser.find_element(By.ID, "steering").is_displayed()

        first = feature_rows(browser)[0]
        feature, word = first[0], first[2].split(",")[0]
        browse(browser, word)
        wait_for(browser, lambda d: (rows := feature_rows(d)) and all(word in row[2] for row in rows))

        browse(browser, "")
        click(browser, By.CSS_SELECTOR, f"#feature-list button[data-steer='{feature}']")
        assert json.loads(browser.find_element(By.ID, "steer").get_attribute("value")) == {feature: 0.5}

        click(browser, By.ID, "explain-features")
        browser.find_element(By.ID, "query").send_keys(demo_dataset.texts[3])
        search(browser)
        assert not browser.find_element(By.ID, "error").text
        assert browser.execute_script("return document.querySelectorAll('#hits tbody tr .shared').length") > 0
