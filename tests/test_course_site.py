"""The course website in a real browser: headless Chromium opens every page of the site
built in fast mode (conftest.py) and checks that it loads, that every image has loaded
(natural width > 0), that the maths was typeset by the site's own MathJax (no TeX left
as text, no TeX error), that nothing came from another origin, and that the console
shows no error.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and the
``course`` extra (selenium); skips, saying which is missing, otherwise.
``MINSTN_SITE_SCREENSHOTS=DIR`` saves a screenshot of every page there.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.tutorials

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1400"]

WAIT_FOR_PAGE = """
const done = arguments[arguments.length - 1];
const typeset = (window.MathJax && MathJax.startup) ? MathJax.startup.promise : Promise.reject('MathJax did not load');
Promise.all([typeset, ...Array.from(document.images).map(i => i.decode().catch(() => null))])
  .then(() => done('ok'), e => done(String(e)));
"""

PAGE_FACTS = """
const prose = Array.from(document.querySelectorAll('main .markdown')).map(e => e.innerText).join('\\n');
return {
  images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
  maths: document.querySelectorAll('mjx-container').length,
  tex_errors: document.querySelectorAll('mjx-merror').length,
  tex_left: (prose.match(/\\$\\$|\\\\begin\\{|\\\\frac|\\$[^$\\s][^$]*\\$/g) || []).slice(0, 5),
  resources: performance.getEntriesByType('resource').map(r => r.name),
  title: document.title, text: document.body.innerText.length,
};
"""


def _browser(tmp_path):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("Chromium not installed (apt-get install -y chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium not installed (pip install -e '.[course]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(60)
    return driver


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(folder: Path) -> http.server.ThreadingHTTPServer:
    """The folder over HTTP on a free loopback port, in a background thread."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def served_site(course_site):
    if course_site is None:
        pytest.skip("the course extra is not installed (pip install -e '.[course]')")
    folder = course_site[0]
    server = _serve(folder)
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/", course_site[1]
    server.shutdown()


def test_every_page_loads_with_images_and_maths_and_no_console_error(served_site, tmp_path):
    folder, base, manifest = served_site
    pages = sorted(p.name for p in folder.glob("*.html"))
    steps = {f"{r['name']}.html": r for r in manifest["steps"]}
    assert set(steps) <= set(pages) and {"index.html", "repl.html"} <= set(pages), pages
    shots = os.environ.get("MINSTN_SITE_SCREENSHOTS")
    driver = _browser(tmp_path)
    problems, typeset = {}, {}
    try:
        for name in pages:
            driver.get(base + name)
            state = driver.execute_async_script(WAIT_FOR_PAGE)
            facts = driver.execute_script(PAGE_FACTS)
            errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            source = (folder / name).read_text()
            wrong = []
            if state != "ok":
                wrong.append(f"page did not settle: {state}")
            if facts["text"] < 200:
                wrong.append("almost no text")
            broken = [src for src, complete, width in facts["images"] if not complete or width == 0]
            if broken:
                wrong.append(f"images not loaded: {broken}")
            if len(facts["images"]) != source.count("<img "):
                wrong.append(f"{len(facts['images'])} images in the page, {source.count('<img ')} in its HTML")
            if name in steps and len(facts["images"]) < len(steps[name]["figures"]):
                wrong.append(f"{len(facts['images'])} images for {len(steps[name]['figures'])} figures")
            if facts["tex_errors"] or facts["tex_left"]:
                wrong.append(f"maths not rendered: {facts['tex_errors']} TeX errors, left as text: {facts['tex_left']}")
            if re.search(r"\$\$|\\\(", source.partition("<main>")[2]) and facts["maths"] == 0:
                wrong.append("the page has maths but none was typeset")
            foreign = [r for r in facts["resources"] if not r.startswith((base, "data:"))]
            if foreign:
                wrong.append(f"loaded from elsewhere: {foreign}")
            if errors:
                wrong.append(f"console errors: {errors}")
            if wrong:
                problems[name] = wrong
            typeset[name] = facts["maths"]
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(Path(shots) / f"{Path(name).stem}.png"))
                for what, selector in (("maths", "mjx-container[display]"), ("figure", "figure img")):
                    if driver.execute_script(f"const e = document.querySelector('{selector}'); "
                                             "if (e) e.scrollIntoView(); return !!e;"):
                        driver.save_screenshot(str(Path(shots) / f"{Path(name).stem}-{what}.png"))
    finally:
        driver.quit()
    assert not problems, problems
    # The paper's equations are on the pages that derive them, typeset.
    for step in ("01", "02", "04", "05"):
        page = next(p for p in pages if p.startswith(step))
        assert typeset[page] >= 2, (page, typeset[page])


def test_the_browser_check_catches_a_broken_page(course_site, tmp_path):
    """Negative control: a page with a missing image, raw TeX and a script error fails each check."""
    if course_site is None:
        pytest.skip("the course extra is not installed (pip install -e '.[course]')")
    folder = tmp_path / "site"
    shutil.copytree(course_site[0] / "_static", folder / "_static")
    good = (course_site[0] / "index.html").read_text()
    broken = good.replace("<main>", '<main><div class="markdown"><p>$$\\frac{1}{0$$ and $x$</p></div>'
                          '<img src="missing.png"><script>undefined_function()</script>', 1)
    (folder / "index.html").write_text(broken)
    server = _serve(folder)
    driver = _browser(tmp_path)
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        driver.execute_async_script(WAIT_FOR_PAGE)
        facts = driver.execute_script(PAGE_FACTS)
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
        server.shutdown()
    assert any(width == 0 for _, _, width in facts["images"])
    assert facts["tex_errors"] > 0 or facts["tex_left"]
    assert any("undefined_function" in e for e in errors) and any("missing.png" in e for e in errors)
