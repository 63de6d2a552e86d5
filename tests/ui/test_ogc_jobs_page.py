"""The provider's "OGC jobs" page (``airflow_provider_ogc.plugins``) in a real browser.

One Airflow (api-server, scheduler, dag-processor, triggerer: ``AirflowStack``) runs the DAGs of
``tests/system/ui_dags`` against the local dev stack (pygeoapi ``water-bodies`` on synthetic scenes,
moto S3), paced so that the job runs ~17 s. Its auth manager is the test-only
``tests/support/ui_auth_manager.py``: SimpleAuthManager with two users, ``admin`` and ``restricted``,
the latter denied the DAG ``ogc_ui_secret``, which is the one run here. Both users sign in through
Airflow's own login page, with passwords the test writes into SimpleAuthManager's password file.

Everything asserted is read from the DOM in headless Chromium: the "OGC jobs" entry of Airflow's
navigation (the page in an iframe at ``/plugin/ogc-jobs``), the job's progress rising while it runs,
its results on the map and as quick-looks, the task instance's "OGC job page" tab, and what the page shows
a user who may not read the DAG. Screenshots go to ``.artifacts/ui/airflow-<version>/`` (or
``$OGC_TEST_ARTIFACTS``); with ``OGC_TEST_UPDATE_DOCS=1`` the job's map, downscaled, also replaces
``docs/ogc-jobs-page.png`` (the README's picture).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from tests.support.ci import unavailable
from tests.system.airflow_stack import AirflowStack
from tests.ui.test_airflow_ui import UI

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from dev.stack import Stack

# The module's fixtures (the dev stack, Airflow) count against the first test's timeout.
pytestmark = [pytest.mark.system, pytest.mark.ui, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
DAGS = REPO / "tests" / "system" / "ui_dags"
DOCS_PICTURE = REPO / "docs" / "ogc-jobs-page.png"
DAG_ID = "ogc_ui_secret"  # tests.support.ui_auth_manager.DENIED_DAG: hidden from "restricted"
TASK_ID = "detect_water_bodies"
USERS = {"admin": "admin", "restricted": "viewer"}  # username: SimpleAuthManager role
UI_TIMEOUT = 90.0  # seconds for a page or element to appear: 2 shared cores, a cold SPA
RUN_TIMEOUT = 180.0

# The job's row in the list, as the page shows it (None until the row is there and visible).
_ROW = """
const row = [...document.querySelectorAll('tr.ogc-job')].find((r) => r.dataset.jobKey === arguments[0]);
if (!row || row.getClientRects().length === 0) return null;
const bar = row.querySelector('.ogc-progress-bar[role=progressbar]');
return {
  status: row.dataset.status,
  dag: row.dataset.dagId,
  now: bar.getAttribute('aria-valuenow'),
  text: row.querySelector('.ogc-progress-text').textContent,
  fill: row.querySelector('.ogc-progress-fill').style.width,
  process: row.querySelector('.ogc-process').textContent,
  message: row.querySelector('.ogc-message').textContent,
};
"""

# The job view: its summary, items, quick-looks (cards and map overlays) and footprints.
_JOB_VIEW = """
const view = document.getElementById('ogc-job-view');
const map = document.getElementById('ogc-map');
const mapBox = map.getBoundingClientRect();
const inMap = (el) => {
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && r.right > mapBox.left && r.left < mapBox.right
    && r.bottom > mapBox.top && r.top < mapBox.bottom;
};
const legend = document.getElementById('ogc-legend');
return {
  shown: !view.hidden,
  status: view.dataset.status,
  key: view.dataset.jobKey,
  progress: document.querySelector('#ogc-job-progress .ogc-progress-bar')?.getAttribute('aria-valuenow') ?? null,
  error: document.getElementById('ogc-error').hidden ? null : document.getElementById('ogc-error').textContent,
  items: [...document.querySelectorAll('#ogc-items article.ogc-item')].map((a) => a.dataset.itemId),
  quicklooks: [...document.querySelectorAll('#ogc-items article.ogc-item img.ogc-quicklook')].map((img) => ({
    item: img.closest('article').dataset.itemId,
    loaded: img.dataset.loaded === 'true' && img.complete,
    blob: img.src.startsWith('blob:'),
    width: img.naturalWidth,
    height: img.naturalHeight,
  })),
  quicklookErrors: [...document.querySelectorAll('.ogc-quicklook-error')].map((p) => p.textContent),
  footprints: [...map.querySelectorAll('path.ogc-footprint')].map(inMap),
  overlays: [...map.querySelectorAll('img.ogc-quicklook-overlay')].map((img) => img.complete && img.naturalWidth > 0 && inMap(img)),
  legend: legend.hidden ? null : legend.textContent,
  itemsMessage: document.getElementById('ogc-items-message').hidden ? null : document.getElementById('ogc-items-message').textContent,
};
"""

# The browser's own requests with the page's credentials (the JWT in localStorage on 3.1, the
# session cookie on 3.3): the HTTP status of each path below /ogc/.
_FETCH_STATUSES = """
const [paths, done] = [arguments[0], arguments[arguments.length - 1]];
const token = window.localStorage.getItem('token');
const headers = token ? {Authorization: 'Bearer ' + token} : {};
Promise.all(paths.map((p) => fetch(p, {headers, credentials: 'same-origin'}).then((r) => r.status)))
  .then(done, (err) => done(String(err)));
"""


class _Stack(AirflowStack):
    """The stack whose REST calls run as ``admin`` signed in with its password (no all-admins mode)."""

    passwords: dict[str, str]

    def _get_token(self) -> str:
        body = {"username": "admin", "password": self.passwords["admin"]}
        token: str = self._request("POST", "/auth/token", body, auth=False)["access_token"]
        return token


@pytest.fixture(scope="module")
def airflow(chromium: Path, water_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Stack]:
    """Airflow with the test-only auth manager, users ``admin`` and ``restricted``, ``ui_dags``."""
    if not (BIN_DIR / "airflow").exists():
        unavailable(f"no airflow executable beside {sys.executable}")
    home = tmp_path_factory.mktemp("airflow-home")
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    # SimpleAuthManager keeps the passwords it finds in this file and generates only missing ones.
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps(passwords) + "\n")
    env = {
        **water_stack.env(),
        "PYTHONPATH": str(REPO),
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.support.ui_auth_manager.OneDagDeniedAuthManager",
        # With all-admins on, 3.3 would hand every request an admin token: no login page, no 403.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
    }
    stack = _Stack(home, DAGS, BIN_DIR, env=env, parallelism=4)
    stack.passwords = passwords
    with stack.start():
        yield stack


def job_key(run_id: str) -> str:
    return f"{DAG_ID}/{run_id}/{TASK_ID}/-1"


def job_hash(run_id: str) -> str:
    return "#job/" + "/".join(urllib.parse.quote(p, safe="") for p in job_key(run_id).split("/"))


def open_ogc_jobs_from_the_navigation(ui: UI) -> None:
    """Click "OGC jobs" in Airflow's navigation (in its "Plugins" menu unless it is top-level),
    then switch into the page's iframe."""
    from selenium.webdriver.common.by import By

    driver = ui.driver
    driver.switch_to.default_content()
    entry = "//a[contains(@href, 'plugin/ogc-jobs')]"

    def opened(d: WebDriver) -> bool:
        links = [a for a in d.find_elements(By.XPATH, entry) if a.is_displayed()]
        if links:
            links[0].click()
            return True
        for button in d.find_elements(
            By.XPATH, "//button[normalize-space()='Plugins' or @aria-label='Plugins' or @title='Plugins']"
        ):
            if button.is_displayed():
                button.click()
                break
        return False

    ui.wait("the 'OGC jobs' entry of the navigation", opened)
    ui.wait("the /plugin/ogc-jobs page", lambda d: "/plugin/ogc-jobs" in d.current_url)
    frame = ui.element("//iframe[contains(@src, '/ogc/')]", "the OGC jobs page's iframe")
    driver.switch_to.frame(frame)
    ui.element("//*[@id='ogc-list-view']", "the jobs list in the iframe")


def test_a_running_job_rises_to_100_and_its_results_are_on_the_map(
    browser: WebDriver, airflow: _Stack, water_stack: Stack, ui_artifacts: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    ui = UI(browser, airflow.api_url, ui_artifacts)
    run_id = airflow.trigger_dag(DAG_ID)  # the task starts while the admin signs in
    key = job_key(run_id)
    ui.log_in("admin", airflow.passwords["admin"])
    airflow.submitted_job(DAG_ID, run_id, TASK_ID)
    open_ogc_jobs_from_the_navigation(ui)

    # 1. The row's progress bar, polled by the page every 4 s, rises while the job runs.
    seen: list[dict[str, Any]] = []
    rising: list[int] = []

    def finished(d: WebDriver) -> dict[str, Any] | Literal[False]:
        row: dict[str, Any] | None = d.execute_script(_ROW, key)
        if not row:
            return False
        if not seen or seen[-1] != row:
            seen.append(row)
        if row["status"] in ("running", "accepted") and row["now"] is not None:
            now = int(row["now"])
            assert row["text"] == f"{now}%" and row["fill"] == f"{now}%", row
            if now < 100 and (not rising or rising[-1] != now):
                rising.append(now)
                if len(rising) == 2:
                    ui.screenshot("ogc-jobs-running.png")
        return row if row["status"] not in ("running", "accepted", "queued", None) else False

    started = time.monotonic()
    final = ui.wait(f"job {key} to finish in the list", finished, RUN_TIMEOUT)
    print(f"progress seen on screen: {rising} in {time.monotonic() - started:.1f}s; rows: {seen}")
    assert len(rising) >= 2, f"the progress did not rise on screen while the job ran: {seen}"
    assert rising == sorted(rising) and len(set(rising)) == len(rising), rising
    assert final["status"] == "successful", seen
    assert final["now"] == "100" and final["text"] == "100%" and final["fill"] == "100%", final
    assert final["dag"] == DAG_ID and final["process"] == "water-bodies", final
    ui.screenshot("ogc-jobs-list.png")

    # 2. The job view: one footprint, one map overlay and one loaded quick-look per result item.
    def open_job(d: WebDriver) -> bool:
        try:  # the list re-renders its rows at each poll
            d.find_element(By.CSS_SELECTOR, f'tr.ogc-job[data-job-key="{key}"] a.ogc-job-link').click()
        except StaleElementReferenceException:
            return False
        return True

    ui.wait("the job's Open link", open_job)
    expected_ids = sorted(u.rsplit("/", 1)[1] for u in water_stack.example_inputs()["stac_items"])
    view = wait_for_results(ui, key, len(expected_ids))
    assert sorted(view["items"]) == expected_ids, view
    assert view["status"] == "successful" and view["progress"] == "100", view
    assert sorted(q["item"] for q in view["quicklooks"]) == expected_ids, view
    assert all(q["blob"] and 0 < q["width"] <= 512 and 0 < q["height"] <= 512 for q in view["quicklooks"]), (
        view
    )
    assert view["footprints"] == [True] * len(expected_ids), view  # each on the map's visible area
    assert view["overlays"] == [True] * len(expected_ids), view
    assert view["legend"] and "water" in view["legend"].lower(), view
    assert view["itemsMessage"] is None and view["quicklookErrors"] == [] and view["error"] is None, view
    browser.execute_script("document.getElementById('ogc-job-title').scrollIntoView({block: 'start'})")
    ui.wait(
        "the map on screen", lambda d: d.execute_script(_JOB_VIEW)["footprints"] == [True] * len(expected_ids)
    )
    shot = ui.screenshot("ogc-job-map.png")
    small = ui_artifacts / "ogc-jobs-page.png"
    downscale_png(shot, small, max_width=1000)
    assert small.stat().st_size < 200_000, small.stat().st_size
    if os.environ.get("OGC_TEST_UPDATE_DOCS", "").lower() in ("1", "true", "yes"):
        DOCS_PICTURE.parent.mkdir(exist_ok=True)
        DOCS_PICTURE.write_bytes(small.read_bytes())

    # 3. The task instance's "OGC job page" tab shows the same job ({RUN_ID}, {MAP_INDEX} filled in by the UI).
    browser.switch_to.default_content()
    quoted = urllib.parse.quote(run_id, safe="")
    browser.get(f"{airflow.api_url}/dags/{DAG_ID}/runs/{quoted}/tasks/{TASK_ID}/plugin/ogc-job")
    browser.switch_to.frame(
        ui.element("//iframe[contains(@src, '/ogc/')]", "the 'OGC job page' tab's iframe")
    )
    tab = wait_for_results(ui, key, len(expected_ids))
    assert sorted(tab["items"]) == expected_ids and tab["status"] == "successful", tab
    browser.switch_to.default_content()
    ui.element(f"//a[contains(@href, '/tasks/{TASK_ID}/plugin/ogc-job')]", "the 'OGC job page' tab")
    ui.screenshot("ogc-job-tab.png")


def wait_for_results(ui: UI, key: str, count: int) -> dict[str, Any]:
    """The job view once it shows ``key`` with ``count`` items whose quick-looks have all loaded."""

    def ready(d: WebDriver) -> dict[str, Any] | Literal[False]:
        view: dict[str, Any] = d.execute_script(_JOB_VIEW)
        if view["error"] or view["quicklookErrors"]:
            raise AssertionError(f"the job view shows an error: {view}")
        done = (
            view["shown"]
            and view["key"] == key
            and len(view["items"]) == count
            and len(view["quicklooks"]) == count
            and all(q["loaded"] for q in view["quicklooks"])
            and len(view["overlays"]) == count
        )
        return view if done else False

    return ui.wait(f"job {key} with {count} items and their quick-looks", ready)


def test_a_user_who_may_not_read_the_dag_sees_no_job_and_403(
    browser: WebDriver, airflow: _Stack, ui_artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By

    runs = airflow.dag_runs(DAG_ID)
    assert runs, f"no run of {DAG_ID}: the first test did not get that far"
    run_id = runs[-1]["dag_run_id"]
    assert airflow.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT) == "success"
    ui = UI(browser, airflow.api_url, ui_artifacts)
    ui.log_in("restricted", airflow.passwords["restricted"])

    # The list, in Airflow's iframe, has loaded (no error) and holds no job of the DAG.
    open_ogc_jobs_from_the_navigation(ui)
    ui.wait("the list to load", lambda d: "job(s)" in d.find_element(By.ID, "ogc-count").text)
    assert not browser.find_element(By.ID, "ogc-error").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, f'tr.ogc-job[data-dag-id="{DAG_ID}"]') == []
    assert browser.find_element(By.ID, "ogc-empty").is_displayed()
    assert browser.find_element(By.ID, "ogc-count").text == "0 job(s)"
    dag_filter = [
        o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#ogc-filter-dag option")
    ]
    assert DAG_ID not in dag_filter, dag_filter
    ui.screenshot("ogc-jobs-restricted.png")

    # The job's page, opened directly: the 403 error, no job view.
    browser.switch_to.default_content()
    browser.get(f"{airflow.api_url}/ogc/{job_hash(run_id)}")
    error = ui.element("//*[@id='ogc-error' and contains(@class, 'ogc-error-403')]", "the 403 error")
    assert "403" in error.text, error.text
    assert not browser.find_element(By.ID, "ogc-job-view").is_displayed()
    ui.screenshot("ogc-job-403.png")

    # The browser's own requests with this session: 403 for the job and its quick-look, 200 for the list.
    api = "/ogc/api/jobs/" + "/".join(urllib.parse.quote(p, safe="") for p in job_key(run_id).split("/"))
    statuses = browser.execute_async_script(_FETCH_STATUSES, [api, f"{api}/quicklook/0.png", "/ogc/api/jobs"])
    assert statuses == [403, 403, 200], statuses


def downscale_png(source: Path, target: Path, max_width: int) -> None:
    """``source`` (a screenshot) averaged down to at most ``max_width`` pixels wide, as an RGB PNG."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(source) as src:
            scale = min(1.0, max_width / src.width)
            width, height = round(src.width * scale), round(src.height * scale)
            rgb = src.read((1, 2, 3), out_shape=(3, height, width), resampling=Resampling.average)
        profile = {
            "driver": "PNG",
            "width": width,
            "height": height,
            "count": 3,
            "dtype": "uint8",
            "ZLEVEL": 9,
        }
        with MemoryFile() as mem:
            with mem.open(**profile) as dst:
                dst.write(rgb)
            target.write_bytes(mem.read())
