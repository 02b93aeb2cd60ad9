"""The explorer's Features panel, in a real headless Chromium against a real `vecdial serve`:
a collection with sparse codes lists its labelled features, a label word finds them, one
click steers the search by a feature, and hits show the features they share with the query."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vecdial

from .test_explorer import CHROMEDRIVER, CHROMIUM, browser, search, wait_for  # noqa: F401 (browser: a fixture)
from .test_server_process import vecdial_serve

pytest.importorskip("torch")
pytest.importorskip("sklearn")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (scripts/test.sh installs them)")


def feature_rows(driver) -> list[list[str]]:
    """The Features table's cells, read in one script (a re-render between reads would leave stale elements)."""
    return driver.execute_script("return [...document.querySelectorAll('#feature-list tbody tr')].map(r => [...r.cells].map(c => c.innerText))")


def test_a_person_browses_features_and_steers_by_one(browser, tmp_path, demo_dataset):  # noqa: F811
    rows = slice(0, 600)
    vecdial.connect(tmp_path / "data").create(
        "docs", np.asarray(demo_dataset.vectors[rows]), texts=demo_dataset.texts[rows], ids=demo_dataset.ids[rows],
        source_model=demo_dataset.source_model, settings={"sparse": {"max_active": 16, "hidden_mult": 2, "min_steps": 60}}, show_progress=False,
    )
    with vecdial_serve(tmp_path / "data") as (client, _):
        browser.get(str(client.base_url) + "/ui/")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#feature-list tbody tr button"))
        assert browser.find_element(By.ID, "features").is_displayed() and browser.find_element(By.ID, "steering").is_displayed()

        first = feature_rows(browser)[0]
        feature, word = first[0], first[2].split(",")[0]
        browser.find_element(By.ID, "feature-query").send_keys(word)
        browser.find_element(By.ID, "browse").click()
        wait_for(browser, lambda d: (rows := feature_rows(d)) and all(word in row[2] for row in rows))

        browser.find_element(By.ID, "feature-query").clear()
        browser.find_element(By.ID, "browse").click()
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#feature-list button[data-steer='{feature}']"))
        browser.find_element(By.CSS_SELECTOR, f"#feature-list button[data-steer='{feature}']").click()
        assert json.loads(browser.find_element(By.ID, "steer").get_attribute("value")) == {feature: 0.5}

        browser.find_element(By.ID, "explain-features").click()
        browser.find_element(By.ID, "query").send_keys(demo_dataset.texts[3])
        search(browser)
        assert not browser.find_element(By.ID, "error").text
        assert browser.find_elements(By.CSS_SELECTOR, "#hits tbody tr .shared")
