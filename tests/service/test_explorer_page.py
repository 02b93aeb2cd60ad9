"""The explorer's page reads well, in a real headless Chromium against a real `vecdial serve`:
long hit texts fold, the plot names its latencies and its best points, and knobs set by the
keyboard or a script (a `change` event, no `input`) update the budget line."""

from __future__ import annotations

import pytest

import vecdial

from .test_explorer import CHROMEDRIVER, CHROMIUM, browser, search, wait_for  # noqa: F401  (browser: a fixture)
from .test_server_process import vecdial_serve

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (scripts/test.sh installs them)"
)


def test_long_texts_fold_the_plot_has_ticks_and_labels_and_change_events_update_the_budget(browser, tiny_data_dir, tiny_dataset):  # noqa: F811
    vecdial.connect(tiny_data_dir).open("tiny").sweep(
        n=40, budgets=["binary:rescore=0", "binary:rescore=10", "dense:dim=64", "exact"], show_progress=False
    )
    long_row = max(range(len(tiny_dataset.texts)), key=lambda i: len(tiny_dataset.texts[i]))
    long_text = tiny_dataset.texts[long_row]
    assert len(long_text) > 400  # the shipped corpus has long docstrings
    with vecdial_serve(tiny_data_dir) as (client, _):
        browser.get(str(client.base_url) + "/ui/")
        wait_for(browser, lambda d: "300 vectors" in d.find_element(By.ID, "about").text)

        ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#plot text.tick")]
        assert any(t.endswith(("ms", "µs")) for t in ticks), ticks  # latency numbers on the x axis
        labels = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#plot text.label")]
        assert labels and all(label.split(":")[0] in {"binary", "dense", "exact"} for label in labels)  # Pareto points named

        browser.execute_script("const m = document.getElementById('mode'); m.value = 'dense'; m.dispatchEvent(new Event('change'));")
        wait_for(browser, lambda d: d.find_element(By.ID, "budget").text.startswith("budget: dense:dim="))

        browser.find_element(By.ID, "query").send_keys(" ".join(long_text.split()[:40]))
        browser.execute_script("const m = document.getElementById('mode'); m.value = 'exact'; m.dispatchEvent(new Event('change'));")
        search(browser)
        row = next(
            r
            for r in browser.find_elements(By.CSS_SELECTOR, "#hits tbody tr")
            if r.find_elements(By.TAG_NAME, "td")[1].text == str(tiny_dataset.ids[long_row])
        )
        folded = row.find_element(By.CSS_SELECTOR, "details.text")
        assert folded.get_attribute("open") is None and len(folded.find_element(By.TAG_NAME, "summary").text) < 300
        assert " ".join(folded.get_attribute("textContent").replace("…", "").split()) == " ".join(long_text.split())  # nothing lost
