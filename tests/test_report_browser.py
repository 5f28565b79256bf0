"""The report in a real browser: headless Chromium (Debian's chromium and chromium-driver) through selenium sorts the
job table, filters it by device and name, opens a job, draws chart text at 10 px or more in an 800 px window, and
shows the whole table with scripts off."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_export import build_demo_export

import oqtopus_data
from oqtopus_data.report import write_report

ROWS = 120  # job table rows: enough to sort and filter, small enough for a quick page

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("Chromium and its driver are not installed (apt-get install chromium chromium-driver, which "
                ".ci/run does when it runs as root)", allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


def browser(*, scripts: bool = True):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=800,1000",
                f"--user-data-dir={tempfile.mkdtemp(prefix='oqtopus-chromium-')}"):
        options.add_argument(arg)
    if not scripts:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_export(tmp_path_factory.mktemp("browser") / "demo-out")


@pytest.fixture(scope="module")
def page_url(export: Path) -> str:
    target = export.parent / "report.html"
    write_report(export, target, table_rows=ROWS)
    return target.as_uri()


@pytest.fixture(scope="module")
def chrome() -> Iterator:
    driver = browser()
    yield driver
    driver.quit()


@pytest.fixture
def page(chrome, page_url):
    chrome.get(page_url)
    return chrome


def newest(export: Path, where: str = "TRUE") -> list[tuple]:
    return oqtopus_data.connect(export).execute(f"""
        SELECT * FROM (SELECT job_id, name, device_id, shots FROM jobs
                       ORDER BY submitted_at DESC NULLS LAST, job_id LIMIT {ROWS}) WHERE {where}""").fetchall()


def visible_rows(page) -> list:
    return [r for r in page.find_elements(By.CSS_SELECTOR, "#jobs-table > tbody > tr") if r.is_displayed()]


def cell_texts(page, column: int) -> list[str]:
    script = ("return Array.from(document.querySelectorAll('#jobs-table > tbody > tr')).filter(r => !r.hidden)"
              ".map(r => r.cells[arguments[0]].getAttribute('data-v') ?? r.cells[arguments[0]].textContent)")
    return page.execute_script(script, column)


def test_clicking_a_heading_sorts_the_jobs_by_that_column(page, export) -> None:
    shots = page.find_element(By.XPATH, "//table[@id='jobs-table']/thead//th[text()='shots']")
    shots.click()
    expected = sorted(s for *_, s in newest(export) if s is not None)
    assert [int(v) for v in cell_texts(page, 5) if v] == expected
    assert shots.get_attribute("aria-sort") == "ascending"
    shots.click()
    assert [int(v) for v in cell_texts(page, 5) if v] == expected[::-1]
    name = page.find_element(By.XPATH, "//table[@id='jobs-table']/thead//th[text()='name and result']")
    name.click()
    names = cell_texts(page, 1)
    assert names == sorted(names, key=str.lower) and shots.get_attribute("aria-sort") == "none"


def test_choosing_a_device_shows_only_its_jobs(page, export) -> None:
    Select(page.find_element(By.CSS_SELECTOR, "#jobs-controls select[name=device]")).select_by_visible_text(
        "Kawasaki")
    kawasaki = newest(export, "device_id = 'Kawasaki'")
    rows = visible_rows(page)
    assert len(rows) == len(kawasaki) > 0
    assert {r.find_elements(By.XPATH, "./td")[2].text for r in rows} == {"Kawasaki"}
    assert page.find_element(By.ID, "jobs-count").text == f"{len(kawasaki)} of {ROWS} jobs shown"
    search = page.find_element(By.CSS_SELECTOR, "#jobs-controls input[name=q]")
    search.send_keys("BELL-PAIR")  # case does not matter
    assert len(visible_rows(page)) == sum(name == "bell-pair" for _, name, *_ in kawasaki)
    search.clear()
    search.send_keys(kawasaki[0][0][:13])  # part of a job id
    assert [r.find_element(By.TAG_NAME, "code").get_attribute("textContent") for r in visible_rows(page)] == [
        kawasaki[0][0]]


def test_clicking_a_row_opens_that_jobs_counts(page, export) -> None:
    con = oqtopus_data.connect(export)
    job_id, = next(r for r in con.execute(f"""
        SELECT job_id FROM (SELECT job_id, total_count, submitted_at FROM jobs
                            ORDER BY submitted_at DESC NULLS LAST, job_id LIMIT {ROWS})
        WHERE total_count > 0 ORDER BY submitted_at DESC LIMIT 1""").fetchall())
    top = con.execute("SELECT bitstring, count FROM counts WHERE job_id = $id ORDER BY count DESC, bitstring "
                      "LIMIT 8", {"id": job_id}).fetchall()
    row = page.find_element(By.XPATH, f"//table[@id='jobs-table']/tbody/tr[.//code[text()='{job_id}']]")
    details = row.find_element(By.TAG_NAME, "details")
    assert details.get_attribute("open") is None
    row.find_elements(By.XPATH, "./td")[1].click()  # the name cell: anywhere on the row opens it
    assert details.get_attribute("open") == "true"
    shown = [tuple(td.text for td in tr.find_elements(By.TAG_NAME, "td"))[:2]
             for tr in details.find_elements(By.CSS_SELECTOR, "table.bits tr")]
    assert shown == [(bits, f"{count:,}") for bits, count in top]
    assert job_id in details.text
    row.find_elements(By.XPATH, "./td")[0].click()
    assert details.get_attribute("open") is None


def test_chart_text_is_at_least_10px_in_an_800px_window(page) -> None:
    assert page.execute_script("return window.innerWidth") == 800
    sizes = page.execute_script("""
        return Array.from(document.querySelectorAll('svg text')).map(function (t) {
            var m = t.getScreenCTM();
            return parseFloat(getComputedStyle(t).fontSize) * Math.sqrt(m.a * m.a + m.b * m.b);
        });""")
    assert len(sizes) > 300 and min(sizes) >= 10, min(sizes)


def test_without_scripts_the_whole_table_reads_and_jobs_still_open(export, page_url) -> None:
    driver = browser(scripts=False)
    try:
        driver.get(page_url)
        assert not driver.find_element(By.ID, "jobs-controls").is_displayed()  # filters need the script
        assert len(visible_rows(driver)) == ROWS
        first = driver.find_element(By.CSS_SELECTOR, "#jobs-table > tbody > tr")
        first.find_element(By.TAG_NAME, "summary").click()  # <details> opens without any script
        assert first.find_element(By.TAG_NAME, "details").get_attribute("open") == "true"
        assert newest(export)[0][0] in first.text
    finally:
        driver.quit()


def test_wide_bitstrings_stay_on_one_line_with_the_whole_value_on_hover(tmp_path, chrome) -> None:
    from conftest import load_payload
    from demo_export import write_export

    jobs = []
    for k, width in enumerate((2, 61, 100)):
        job = load_payload("sampling_current")
        job["job_id"], job["submitted_at"] = f"wide-{width}", f"2025-03-0{k + 4}T09:12:31Z"
        job["job_info"]["result"]["sampling"]["counts"] = {"1" * width: 600, "0" * (width - 1) + "1": 400}
        jobs.append(job)
    target = tmp_path / "wide.html"
    write_report(write_export(jobs, tmp_path / "out"), target)
    chrome.get(target.as_uri())
    cells = chrome.find_elements(By.CSS_SELECTOR, "#top-bitstrings td.bitstring")
    assert len(cells) == 6
    heights = {cell.text: cell.size["height"] for cell in cells}
    narrow = heights["11"]
    assert all(h <= narrow + 1 for h in heights.values()), heights  # one line each, however wide
    hover = sorted(s.get_attribute("title") for s in chrome.find_elements(By.CSS_SELECTOR, "#top-bitstrings .bits1")
                   if s.get_attribute("title"))
    assert hover == sorted(["1" * 61, "0" * 60 + "1", "1" * 100, "0" * 99 + "1"])
    assert "(100 bits)" in chrome.find_element(By.ID, "top-bitstrings").text
    assert "rightmost is bit 0" in chrome.find_element(By.ID, "top-bitstrings").text


def test_a_clipped_bar_shows_its_total_clear_of_the_title_and_recalibrations_are_visible_ticks(page) -> None:
    boxes = page.execute_script("""
        const svg = document.querySelector('#usage svg');
        const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
        const texts = [...svg.querySelectorAll('text')];
        const total = texts.find(t => t.getAttribute('font-weight') === 'bold' && /^[0-9.]+[KMG]$/.test(t.textContent));
        const titles = texts.filter(t => t.getAttribute('font-size') === '12' || t.textContent.includes('clipped'));
        const ticks = [...document.querySelectorAll('#drift line[stroke="#8a5a00"]')].map(box);
        return {svg: box(svg), total: total && box(total), titles: titles.map(box), ticks: ticks};""")
    assert boxes["total"], "the clipped month's total is written"
    left, top, right, bottom = boxes["total"]
    assert boxes["svg"][1] <= top and bottom <= boxes["svg"][3]
    for t_left, t_top, t_right, t_bottom in boxes["titles"]:  # no overlap with a frame's title or note
        assert right <= t_left or t_right <= left or bottom <= t_top or t_bottom <= top
    assert len(boxes["ticks"]) > 10 and all(4 <= b[3] - b[1] <= 12 for b in boxes["ticks"])  # ticks, not lines across
