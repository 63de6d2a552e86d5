"""The Airflow UI in a real browser: a ``water_bodies`` run shows its OGC job link and the job's progress.

``airflow standalone`` runs ``example_dags/water_bodies.py`` against the local dev stack (pygeoapi
``water-bodies`` on synthetic scenes, moto S3). The REST API only creates the run and waits for it
to end; everything asserted below is read from the DOM of the React UI in headless Chromium, and
each page is saved as a screenshot in ``.artifacts/ui/airflow-<version>/`` (or ``$OGC_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

    from dev.stack import Stack
    from tests.ui.conftest import Standalone

# The module's fixtures (the dev stack, `airflow standalone`) count against the first test's timeout.
pytestmark = [pytest.mark.system, pytest.mark.ui, pytest.mark.timeout(480)]
T = TypeVar("T")

DAG_ID = "water_bodies"
TASK_ID = "detect_water_bodies"
WEEK_END = "2023-12-10T00:00:00Z"
UI_TIMEOUT = 90.0  # seconds for a page or element to appear: 2 shared cores, a cold SPA
RUN_TIMEOUT = 240.0
JOB_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

# The UI's log is virtualized: only the rows near the viewport are in the DOM. This reads them
# (data-index -> text), then scrolls the log: arguments[0] is "down" (by most of a page, so that
# successive calls see every row) or "top"; "down" only scrolls when arguments[1], the highest row
# index the previous call saw, is below this call's, i.e. once the last scroll has been rendered.
_READ_LOG_ROWS = """
const [scroll, lastMax] = arguments;
const rows = [...document.querySelectorAll('[data-testid^="virtualized-item-"]')];
if (rows.length === 0) return null;
let box = rows[0].parentElement;
while (box && !(box.scrollHeight > box.clientHeight + 1 && /auto|scroll/.test(getComputedStyle(box).overflowY))) {
  box = box.parentElement;
}
const seen = rows.map((row) => [Number(row.dataset.index), row.innerText]);
const maxIndex = Math.max(...seen.map(([index]) => index));
const bottom = !box || box.scrollTop + box.clientHeight >= box.scrollHeight - 1;
if (box && scroll === "down" && !bottom && maxIndex > lastMax) box.scrollTop += box.clientHeight * 0.6;
if (box && scroll === "top") box.scrollTop = 0;
return {rows: seen, maxIndex: maxIndex, bottom: bottom};
"""


class UI:
    """The few gestures the test makes in the Airflow UI; waits on elements and text, never on time."""

    def __init__(self, driver: WebDriver, base_url: str, artifacts: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.artifacts = artifacts

    def wait(
        self, what: str, condition: Callable[[WebDriver], T | Literal[False]], timeout: float = UI_TIMEOUT
    ) -> T:
        """Poll ``condition`` until it returns something truthy; a TimeoutException names ``what``."""
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(
            condition, f"waiting for {what}"
        )

    def element(self, xpath: str, what: str) -> WebElement:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(what, ec.visibility_of_element_located((By.XPATH, xpath)))

    def text_shown(self, text: str) -> None:
        self.element(f"//*[contains(normalize-space(.), {xpath_literal(text)})]", f"text {text!r}")

    def screenshot(self, name: str) -> Path:
        path = self.artifacts / name
        assert self.driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        return path

    def log_in(self, username: str, password: str) -> None:
        """SimpleAuthManager's sign-in form, as a user fills it in."""
        self.driver.get(f"{self.base_url}/")
        self.element("//input[@name='username']", "the sign-in form").send_keys(username)
        self.element("//input[@name='password']", "the password field").send_keys(password)
        self.element("//button[@type='submit' and normalize-space()='Sign in']", "the Sign in button").click()
        self.wait("the UI after signing in", lambda d: "/auth/login" not in d.current_url)
        self.element("//a[@href='/dags' or normalize-space()='Dags']", "the navigation")

    def read_log(self, until: str) -> str:
        """The task log as the UI renders it, every row, once a row containing ``until`` has appeared.

        The log is read top to bottom; it is complete when two reads at the bottom saw the same rows.
        """
        rows: dict[int, str] = {}
        last = {"max": -1, "bottom_max": -2}

        def complete(driver: WebDriver) -> bool:
            seen = driver.execute_script(_READ_LOG_ROWS, "down", last["max"])
            if not seen:
                return False
            rows.update({int(i): text for i, text in seen["rows"]})
            last["max"] = seen["maxIndex"]
            if not seen["bottom"]:
                return False
            stable, last["bottom_max"] = last["bottom_max"] == seen["maxIndex"], seen["maxIndex"]
            return stable and any(until in text for text in rows.values())

        self.driver.execute_script(_READ_LOG_ROWS, "top", -1)
        self.wait(f"the whole log, with a row containing {until!r}", complete)
        return "\n".join(" ".join(rows[i].split()) for i in sorted(rows))

    def show_log_row(self, text: str) -> None:
        """Scroll the log until the row containing ``text`` is at the top (for the screenshot)."""
        from selenium.webdriver.common.by import By

        self.driver.execute_script(_READ_LOG_ROWS, "top", -1)
        last = {"max": -1}

        def shown(driver: WebDriver) -> bool:
            for row in driver.find_elements(By.CSS_SELECTOR, '[data-testid^="virtualized-item-"]'):
                if text in row.text:
                    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", row)
                    return True
            seen = driver.execute_script(_READ_LOG_ROWS, "down", last["max"])
            last["max"] = seen["maxIndex"] if seen else -1
            return False

        self.wait(f"the log row with {text!r} on screen", shown)


def xpath_literal(text: str) -> str:
    return f"'{text}'" if "'" not in text else "concat('" + text.replace("'", "', \"'\", '") + "')"


def explain(standalone: Standalone, run_id: str) -> str:
    return f"task states: {standalone.task_states(DAG_ID, run_id)}\n{standalone.log_tail(40)}"


def test_water_bodies_run_shows_the_ogc_job_link_and_the_job_progress(
    browser: WebDriver, standalone: Standalone, water_stack: Stack, ui_artifacts: Path
) -> None:
    # The weekly run of 3 to 10 December 2023: its STAC search finds the two scenes of the 8th.
    run_id = standalone.trigger(DAG_ID, {"aoi": water_stack.example_inputs()["aoi"]}, logical_date=WEEK_END)
    ui = UI(browser, standalone.url, ui_artifacts)
    ui.log_in("admin", standalone.admin_password())
    state = standalone.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)
    assert state == "success", explain(standalone, run_id)

    # The run page: the grid, and the run's task instances, each finished.
    browser.get(f"{standalone.url}/dags/{DAG_ID}/runs/{urllib.parse.quote(run_id, safe='')}")
    for task in ("find_scenes", TASK_ID, "water_area", "report"):
        ui.element(f"//*[normalize-space()={xpath_literal(task)}]", f"task {task} in the grid")
    ui.element("//*[normalize-space()='Success']", "the run's state")
    ti_link = ui.element(
        f"//a[normalize-space()={xpath_literal(TASK_ID)} and contains(@href, {xpath_literal(f'/runs/{run_id}/tasks/{TASK_ID}')})]",
        f"the link to {TASK_ID} of this run",
    )
    ui.screenshot("01-run-grid.png")

    # The task instance's log: the operator's submission and the trigger's progress lines.
    ti_link.click()
    ui.element(f"//a[@title='Logs' and contains(@href, '/tasks/{TASK_ID}')]", "the Logs tab").click()
    log = ui.read_log(until=": successful, progress 100%")
    submitted = re.search(rf"Job ({JOB_ID}) of process water-bodies: (\S+)", log)
    assert submitted, f"no submission line in the log the UI shows:\n{log}"
    job_id, logged_url = submitted.groups()
    job_url = f"{water_stack.ogc_url}/jobs/{job_id}"
    assert logged_url == job_url
    progress = [int(p) for p in re.findall(rf"Job {job_id}: running, progress (\d+)%", log)]
    assert progress, f"no 'running, progress N%' line from the trigger in the log the UI shows:\n{log}"
    assert progress == sorted(progress) and all(0 <= p < 100 for p in progress), progress
    assert f"Job {job_id}: successful, progress 100%, Job complete" in log
    assert "2 STAC item(s) from output(s) stac_catalog" in log
    ui.show_log_row(f"Job {job_id}: running, progress {progress[0]}%")
    ui.screenshot("02-task-log.png")

    # The Details tab holds the operator's extra links: "OGC job" is the job's status URL.
    ui.element(
        f"//a[@title='Details' and contains(@href, '/tasks/{TASK_ID}/details')]", "the Details tab"
    ).click()
    job_link = ui.element("//a[normalize-space()='OGC job']", "the 'OGC job' extra link")
    results_link = ui.element("//a[normalize-space()='OGC results']", "the 'OGC results' extra link")
    assert job_link.get_attribute("href") == job_url
    assert results_link.get_attribute("href") == f"{job_url}/results"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", job_link)
    ui.screenshot("03-extra-links.png")

    # Following the link in the browser reaches the job on the local pygeoapi.
    tabs = set(browser.window_handles)
    job_link.click()
    ui.wait("the job page to open", lambda d: len(d.window_handles) > len(tabs))
    browser.switch_to.window((set(browser.window_handles) - tabs).pop())
    ui.wait("the job page's URL", lambda d: d.current_url.startswith(job_url))
    ui.text_shown(job_id)
    ui.screenshot("04-ogc-job-page.png")
    request = urllib.request.Request(browser.current_url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        status = json.load(response)
    assert (status.get("jobID") or status.get("id")) == job_id and status["status"] == "successful", status
