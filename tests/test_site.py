"""The static site: pages, SVG plots, the sorting/filter script, method pages with CITATION and
REPORTED, byte-identical rebuilds, and the page as headless Chromium renders it from file://."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from snnbench import leaderboard, site
from tests.test_leaderboard import TASK_TOML, make_run, populate

ALPHA = (
    'CITATION = "@article{alpha2024, title={Alpha spikes}}"\n'
    'REPORTED = {"cifar10 accuracy": 0.9321, "energy note": "3x fewer SynOps"}\n'
    "import os\n"
    'os.makedirs("EXECUTED", exist_ok=True)\n'
)
BETA = 'CITATION: str = (\n    "@inproceedings{beta2023,"\n    " year={2023}}"\n)\nREPORTED = {}\n'


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("site")
    tasks = base / "tasks"
    tasks.mkdir()
    (tasks / "digits.toml").write_text(TASK_TOML.format(version=2))
    subs = base / "subs"
    (subs / "beta").mkdir(parents=True)
    (subs / "alpha.py").write_text(ALPHA)
    (subs / "beta" / "__init__.py").write_text(BETA)
    (subs / "beta" / "README.md").write_text("# beta\n")
    store = base / "store"
    populate(store)
    paths = leaderboard.build(store, base / "out", tasks_dir=tasks, submissions_root=base)
    return {"base": base, "tasks": tasks, "store": store, "paths": paths, "site": base / "out" / "site"}


def _rel(paths, root):
    return sorted(p.relative_to(root).as_posix() for p in paths)


def test_every_page_and_plot_is_written(built):
    s = built["site"]
    names = _rel(built["paths"][1:], s)
    assert built["paths"][1] == s / "index.html"
    assert {"methods/alpha.html", "methods/beta.html", "methods/gamma.html"} <= set(names)
    svgs = [n for n in names if n.endswith(".svg")]
    # four sections with accuracy and energy: four energy plots, four anytime plots
    assert len([n for n in svgs if n.endswith("-energy.svg")]) == 4
    assert len([n for n in svgs if n.endswith("-anytime.svg")]) == 4
    assert len([n for n in svgs if n.endswith("-firing.svg")]) == 4
    for n in svgs:
        text = (s / n).read_text(encoding="utf-8")
        assert text.lstrip().startswith("<?xml") and "<svg" in text and len(text) > 2000, n
        assert "<dc:date>" not in text  # no build date: rebuilds are byte-identical
    index = (s / "index.html").read_text(encoding="utf-8")
    for n in svgs:
        assert f'src="{n}"' in index
    assert not (built["base"] / "EXECUTED").exists() and not Path("EXECUTED").exists()


def test_index_has_sortable_filterable_tables_and_no_literal_backticks(built):
    index = (built["site"] / "index.html").read_text(encoding="utf-8")
    assert index.count('<table class="lb"') == 4
    assert index.count('<input class="filter"') == 4
    assert "<script>" in index and "addEventListener('click'" in index and 'src="http' not in index
    assert "http://" not in index and "https://" not in index  # nothing fetched from the network
    assert "`" not in index and "<code>snnbench cite RESULT_ID</code>" in index
    section = index.split('id="digits-v1-T4-m1"', 1)[1].split("</section>", 1)[0]
    header = re.findall(r"<th[^>]*>([^<]*)</th>", section.split("</thead>", 1)[0])
    assert header[0] == "method" and header[-3:] == ["flags", "seeds", "result ids"]
    assert "decision step" in header and "µJ/sample compute" in header and "µJ/sample memory-aware" in header
    for rid in (make_run("alpha", s, sub="a")["result_id"] for s in range(3)):
        assert f"<code>{rid}</code>" in section
    assert "† masking" in section and "≥ lower bound" in section
    assert "<code>snnbench cite --task digits --timesteps 4</code>" in section
    # rows best first, numeric sort keys carried in data-v
    names = re.findall(r'<a href="methods/(\w+)\.html">', section.split("<tbody>", 1)[1])
    assert names == ["beta", "alpha", "gamma"]
    assert 'data-v="0.9266666666666666"' in section or 'data-v="0.9266666666666667"' in section


def test_method_pages_carry_citation_reported_and_readme(built):
    alpha = (built["site"] / "methods" / "alpha.html").read_text(encoding="utf-8")
    assert "@article{alpha2024, title={Alpha spikes}}" in alpha
    assert "cifar10 accuracy" in alpha and "93.21 %" in alpha and "3x fewer SynOps" in alpha
    assert "92.67<br><small>± 1.53</small>" in alpha  # the measured figure beside it
    assert 'href="../index.html#digits-v1-T4-m1"' in alpha
    beta = (built["site"] / "methods" / "beta.html").read_text(encoding="utf-8")
    assert "@inproceedings{beta2023, year={2023}}" in beta and "declares no REPORTED figures" in beta
    # a store outside the repository's leaderboard/results: the README by absolute file:// URI
    readme = (built["base"] / "subs" / "beta" / "README.md").resolve().as_uri()
    assert f'href="{readme}"' in beta
    gamma = (built["site"] / "methods" / "gamma.html").read_text(encoding="utf-8")
    assert "No CITATION string" in gamma
    assert "Robustness (where measured)" in gamma and "fgsm eps=0.1" in gamma and ">41.00</td>" in gamma
    assert "Robustness" not in alpha


def test_the_repositorys_own_page_links_readmes_relatively(built, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(built["base"] / "subs", root / "subs")
    shutil.copytree(built["store"], root / "leaderboard" / "results")
    leaderboard.build(
        root / "leaderboard" / "results",
        root / "leaderboard",
        tasks_dir=built["tasks"],
        submissions_root=root,
    )
    beta = (root / "leaderboard" / "site" / "methods" / "beta.html").read_text(encoding="utf-8")
    assert 'href="../../../subs/beta/README.md"' in beta
    assert (root / "leaderboard" / "site" / "methods" / "../../../subs/beta/README.md").resolve().is_file()


def test_rebuild_is_byte_identical_and_drops_stale_files(built, tmp_path):
    out = tmp_path / "out"
    again = leaderboard.build(built["store"], out, tasks_dir=built["tasks"], submissions_root=built["base"])
    assert _rel(again, out) == _rel(built["paths"], built["base"] / "out")
    for new in again:
        old = built["base"] / "out" / new.relative_to(out)
        assert new.read_bytes() == old.read_bytes(), new
    (out / "site" / "methods" / "gone.html").write_text("stale")
    (out / "site" / "plots" / "gone-energy.svg").write_text("stale")
    leaderboard.build(built["store"], out, tasks_dir=built["tasks"], submissions_root=built["base"])
    assert not (out / "site" / "methods" / "gone.html").exists()
    assert not (out / "site" / "plots" / "gone-energy.svg").exists()


def test_pareto_front():
    pts = [(1.0, 90.0), (2.0, 95.0), (3.0, 94.0), (0.5, 80.0), (2.0, 93.0)]
    assert site.pareto_front(pts) == [3, 0, 1]


def test_layer_rates_are_means_over_seeds_in_natural_order(built):
    from snnbench.store import Store

    view = Store(built["store"]).read()
    chosen, _ = leaderboard.select_runs(view.runs.assign(origin="yours"))
    key = ("digits", 1, "1", 4)
    rates = site.layer_rates(chosen[leaderboard._match(chosen, key)], view.metrics)
    assert list(rates) == ["alpha", "beta", "gamma"]
    alpha = rates["alpha"]
    assert [layer for layer, _ in alpha] == ["fc2", "fc10"]
    assert alpha[1][1] == pytest.approx((0.91 + 0.93 + 0.94) / 3 / 4)
    svg = (built["site"] / "plots" / "digits-v1-T4-m1-firing.svg").read_text(encoding="utf-8")
    assert "alpha: fc10" in svg and "gamma: fc2" in svg  # text kept as text (svg.fonttype none)


def test_inline_code():
    assert site.inline("run `a<b` now") == "run <code>a&lt;b</code> now"
    assert site.inline("odd ` tick") == "odd ` tick"


# ---------------------------------------------------------------------------------------------
# headless Chromium (Debian's package; .ci/run installs it when missing)

PROBE = """<script>
window.addEventListener('load', function () {
  var out = {};
  out.scroll = document.documentElement.scrollWidth;
  out.width = window.innerWidth;
  out.tables = document.querySelectorAll('table.lb').length;
  out.imgs = Array.prototype.map.call(document.images, function (i) { return i.naturalWidth; });
  var table = document.querySelector('table.lb');
  var right = 0;
  document.querySelectorAll('table').forEach(function (t) {
    right = Math.max(right, t.getBoundingClientRect().right);
  });
  out.right = right;
  function names() {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return r.cells[0].textContent;
    });
  }
  out.before = names();
  table.querySelectorAll('thead th')[1].click();
  out.ascending = names();
  table.querySelectorAll('thead th')[1].click();
  out.descending = names();
  var f = document.querySelector('input.filter');
  f.value = 'alp';
  f.dispatchEvent(new Event('input'));
  out.visible = Array.prototype.filter.call(table.tBodies[0].rows, function (r) {
    return r.style.display !== 'none';
  }).map(function (r) { return r.cells[0].textContent; });
  document.body.setAttribute('data-probe', JSON.stringify(out));
});
</script>
"""


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        "chromium is not installed: the site test needs Debian's package "
        "(apt-get update && apt-get install -y chromium; .ci/run does this before pytest)"
    )


def chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """Headless Chromium on a file:// URL: no remote debugging port, host names resolve nowhere."""
    cmd = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,900",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def _no_console_errors(proc: subprocess.CompletedProcess) -> None:
    bad = [line for line in proc.stderr.splitlines() if "Uncaught" in line or "Not allowed to load" in line]
    assert not bad, "\n".join(bad)


def test_chromium_renders_sorts_and_filters_at_1280px(built, tmp_path):
    s = tmp_path / "site"
    shutil.copytree(built["site"], s)
    page = (s / "index.html").read_text(encoding="utf-8")
    (s / "probe.html").write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = chromium((s / "probe.html").as_uri(), tmp_path, "--dump-dom", "--virtual-time-budget=10000")
    _no_console_errors(proc)
    found = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert found, proc.stdout[:2000] + proc.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["tables"] == 4 and len(probe["imgs"]) == 12
    assert all(w > 0 for w in probe["imgs"]), probe["imgs"]  # every SVG loaded from file://
    assert probe["width"] == 1280
    assert probe["scroll"] <= probe["width"] and probe["right"] <= probe["width"], probe  # no hidden columns
    assert probe["before"] == ["beta", "alpha", "gamma"]
    assert probe["ascending"] == ["gamma", "alpha", "beta"]  # top-1 % ascending
    assert probe["descending"] == ["beta", "alpha", "gamma"]
    assert probe["visible"] == ["alpha"]


def test_chromium_loads_index_and_method_pages_without_errors(built, tmp_path):
    proc = chromium((built["site"] / "index.html").as_uri(), tmp_path, "--dump-dom")
    _no_console_errors(proc)
    assert '<table class="lb"' in proc.stdout and "<img" in proc.stdout
    proc = chromium((built["site"] / "methods" / "alpha.html").as_uri(), tmp_path, "--dump-dom")
    _no_console_errors(proc)
    assert "Alpha spikes" in proc.stdout and "cifar10 accuracy" in proc.stdout


def test_chromium_screenshot_is_not_blank(built, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    proc = chromium((built["site"] / "index.html").as_uri(), tmp_path, f"--screenshot={shot}")
    _no_console_errors(proc)
    assert shot.is_file(), proc.stderr[-2000:]
    img = Image.open(shot).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100 and sum(1 for n in img.histogram() if n) > 20


def test_committed_site_holds_exactly_what_the_build_writes(tmp_path):
    from snnbench.store import COMMITTED_STORE
    from tests.conftest import REPO

    written = leaderboard.build(COMMITTED_STORE, tmp_path, submissions_root=REPO)
    want = _rel(written[1:], tmp_path / "site")
    have = sorted(
        p.relative_to(REPO / "leaderboard" / "site").as_posix()
        for p in (REPO / "leaderboard" / "site").rglob("*")
        if p.is_file()
    )
    assert have == want, (
        "leaderboard/site has files the build does not write: run `snnbench leaderboard --committed`"
    )


COMMITTED_PROBE = """<script>
window.addEventListener('load', function () {
document.body.setAttribute('data-probe', JSON.stringify({
  scroll: document.documentElement.scrollWidth, width: window.innerWidth,
  tables: document.querySelectorAll('table.lb').length,
  sections: document.querySelectorAll('section').length,
  imgs: Array.prototype.map.call(document.images, function (i) { return i.naturalWidth; })
}));
});
</script>
"""


def test_chromium_committed_page_fits_1280px(tmp_path):
    from tests.conftest import REPO

    s = tmp_path / "leaderboard" / "site"
    shutil.copytree(REPO / "leaderboard" / "site", s)
    page = (s / "index.html").read_text(encoding="utf-8")
    (s / "probe.html").write_text(page.replace("</body>", COMMITTED_PROBE + "</body>"), encoding="utf-8")
    proc = chromium((s / "probe.html").as_uri(), tmp_path, "--dump-dom", "--virtual-time-budget=10000")
    _no_console_errors(proc)
    found = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert found, proc.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["tables"] >= 1 and probe["tables"] == probe["sections"]
    assert probe["imgs"] and all(w > 0 for w in probe["imgs"])
    assert probe["scroll"] <= probe["width"] == 1280, probe  # seeds and result ids visible at 1280 px
