"""The web console in a real headless Chromium (Selenium, Debian's chromium and
chromium-driver), against a live file while a producer and a consumer process run.

An operator watches the lag chart, pauses the consumer group and sees its lag climb,
resumes it, finds the poison order by its key, opens its timeline (dead), deploys the
fix (the consumer stops failing it), redrives the dead letter from the DLQ list and sees
it delivered and acked on the timeline; commits a half message. With
FERRYMQ_SCREENSHOTS=DIR the pages are saved there (README's images: make
console-screenshots)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Callable, Iterator

import ferrymq
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

HERE = pathlib.Path(__file__).resolve().parent
WAIT = 30  # seconds: a bound on waiting for the page, not a measured time


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1900", "--disable-gpu"]:
        options.add_argument(arg)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


@pytest.fixture
def workload() -> Iterator[Callable[[str, pathlib.Path], None]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(role: str, db: pathlib.Path) -> None:
        procs.append(subprocess.Popen([sys.executable, str(HERE / "workload.py"), role, str(db)]))

    yield start
    for p in procs:
        p.kill()
        p.wait()


def shot(driver: WebDriver, name: str) -> None:
    out = os.environ.get("FERRYMQ_SCREENSHOTS")
    if out:
        pathlib.Path(out).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(pathlib.Path(out) / name))


# The page redraws its tables every second: read and click in one script, so no element
# goes stale between finding it and using it.

def lag_of(driver: WebDriver, group: str) -> tuple[int, int]:
    """(samples drawn, last lag of the group) as the chart shows them."""
    got = driver.execute_script(
        """const svg = document.getElementById("lag-chart");
        const line = [...svg.querySelectorAll("polyline")].find((l) => l.dataset.group === arguments[0]);
        return [Number(svg.dataset.samples), line ? Number(line.dataset.last) : -1];""",
        group,
    )
    return int(got[0]), int(got[1])


def click_in_row(driver: WebDriver, table: str, text: str, button: str) -> None:
    clicked = driver.execute_script(
        """for (const row of document.querySelectorAll("#" + arguments[0] + " tbody tr")) {
          if (row.cells[0].textContent === arguments[1]) {
            const b = row.querySelector(arguments[2]);
            if (b) { b.click(); return true; }
          }
        }
        return false;""",
        table,
        text,
        button,
    )
    assert clicked, f"no {button} in row {text} of #{table}"


def events(driver: WebDriver) -> list[tuple[str, str, str]]:
    """(event, group, outcome) of the timeline's rows."""
    rows = driver.execute_script(
        """return [...document.querySelectorAll("#timeline tbody tr")]
             .map((r) => [...r.cells].map((c) => c.textContent));"""
    )
    return [(c[1], c[2], c[4]) for c in rows if len(c) >= 5]


def rows(driver: WebDriver, table: str) -> list[str]:
    """The first cell of each row of a table."""
    return list(driver.execute_script(
        """return [...document.querySelectorAll("#" + arguments[0] + " tbody tr")]
             .map((r) => r.cells[0].textContent);""",
        table,
    ))


def test_an_operator_finds_and_redrives_a_poison_message(
    tmp_path: pathlib.Path,
    serve: Callable[..., str],
    browser: WebDriver,
    workload: Callable[[str, pathlib.Path], None],
) -> None:
    db = tmp_path / "shop.db"
    q = ferrymq.Queue(db)
    q.subscribe("shipping", "orders", retry=ferrymq.RetryPolicy.fixed([]))
    q.subscribe("billing", "invoices")
    q.publish("invoices", b'{"invoice": 1}', key="invoice-1")
    half = q.prepare("invoices", b'{"invoice": 2}', key="invoice-2")
    url = serve(db, "--allow-writes")
    workload("consume", db)
    workload("produce", db)
    wait = WebDriverWait(browser, WAIT, poll_frequency=0.2)

    browser.get(url)
    wait.until(lambda d: "writes allowed" in d.find_element(By.ID, "mode").text)
    wait.until(lambda d: lag_of(d, "shipping")[1] >= 0)
    # The chart redraws from the JSON endpoint it polls.
    first, _ = lag_of(browser, "shipping")
    wait.until(lambda d: lag_of(d, "shipping")[0] >= first + 3)

    # Paused, the group receives nothing while orders keep coming: its lag climbs.
    click_in_row(browser, "groups", "shipping", "button.pause-toggle")
    wait.until(lambda d: q.stats().groups["shipping"].paused)
    _, at_pause = lag_of(browser, "shipping")
    wait.until(lambda d: lag_of(d, "shipping")[1] >= at_pause + 20)
    assert "paused" in browser.execute_script('return document.getElementById("groups").textContent')
    shot(browser, "console-overview.png")
    click_in_row(browser, "groups", "shipping", "button.pause-toggle")
    wait.until(lambda d: not q.stats().groups["shipping"].paused)

    # The poison order, by its key; its timeline shows it dead in shipping.
    wait.until(lambda d: q.stats().groups["shipping"].dead == 1)
    Select(browser.find_element(By.ID, "search-topic")).select_by_visible_text("orders")
    browser.find_element(By.ID, "search-key").send_keys("poison-1")
    browser.find_element(By.ID, "search-go").click()
    found = wait.until(lambda d: rows(d, "search-results"))
    poison = int(found[0])
    assert q.find("orders", "poison-1")[0].id == poison
    browser.find_element(By.CSS_SELECTOR, "#search-results a.message-link").click()
    wait.until(lambda d: ("dead", "shipping", "") in events(d))
    assert ("attempt", "shipping", "nacked") in events(browser)
    shot(browser, "console-timeline.png")

    # The fix is deployed; the dead letter is redriven from the DLQ list and delivered.
    (tmp_path / "shop.db.fixed").touch()
    Select(browser.find_element(By.ID, "dlq-group")).select_by_visible_text("shipping")
    wait.until(lambda d: str(poison) in rows(d, "dlq"))
    shot(browser, "console-dlq.png")
    click_in_row(browser, "dlq", str(poison), "button.redrive")
    wait.until(lambda d: ("redriven", "shipping", "") in events(d))
    wait.until(lambda d: ("attempt", "shipping", "acked") in events(d))
    assert q.message(poison).deliveries["shipping"].state == "acked"
    wait.until(lambda d: not rows(d, "dlq"))
    shot(browser, "console-redriven.png")

    # A half message committed from the console.
    click_in_row(browser, "half", str(half.id), "button.commit")
    wait.until(lambda d: q.message(half.id).state == "committed")
    assert q.stats().groups["billing"].ready >= 1
