"""The website (`make site`) in a real browser: headless Chromium driven by Playwright.

A small site is built from two tutorials executed here (02 and 05, in small mode) and a few of
the explorer's settings; the full `make site` builds the same pages from every tutorial and
every setting (run it by hand: scripts/make_site.py). In Chromium, every page loads with no
console error and no request leaving the file system (the site works offline), every image
is decoded, every internal link and anchor resolves. On the explorer, clicking given tokens
for given settings must show exactly what minswin.ops.masks computes for them: the region,
the mask row, the relative position index row, the keys highlighted on both maps, and the
trained swin_digits bias row; the arrow keys move the selection. Screenshots at desktop and
phone width are written to test-artifacts/site/ ($MINSWIN_TEST_ARTIFACTS) to be looked at.

Without Chromium (Debian's `chromium`) or Playwright the browser tests are skipped, saying
which is missing; `.ci/run` installs Chromium where it can.
"""
import os
import pathlib
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from minswin.ops.masks import (  # noqa: E402
    attention_mask,
    forward_window_shift,
    official_window_shift,
    region_labels,
    relative_position_index,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# the flags this machine's Chromium needs (closed network: no background traffic at all)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TUTORIALS = ["02_patch_embedding.py", "03_patch_merging.py"]
# (H, W, window, shift) -> what a block built for that map uses: (M, (sh, sw), (Hp, Wp))
DECISIONS = {
    (8, 8, 4, 2): (4, (2, 2), (8, 8)),         # the explainer's map
    (56, 56, 7, 3): (7, (3, 3), (56, 56)),     # Swin-T stage 1
    (7, 7, 7, 3): (7, (0, 0), (7, 7)),         # Swin-T stage 4: the window covers the map
    (7, 10, 4, 2): (4, (2, 2), (8, 12)),       # odd: padded bottom/right
    (5, 5, 2, 1): (2, (1, 1), (6, 6)),         # odd: padded, every region of a 2x2 window
    (3, 5, 4, 2): (3, (0, 0), (3, 6)),         # the window shrinks to 3, padded to 3x6
}
# (setting, clicked tokens (r, c) on the map before the roll)
CLICKS = [
    ((8, 8, 4, 2), [(6, 6), (0, 0), (7, 1), (3, 5)]),
    ((56, 56, 7, 3), [(55, 55), (2, 54)]),
    ((7, 10, 4, 2), [(6, 9), (7, 11), (0, 1)]),        # (7, 11): a padding token
    ((5, 5, 2, 1), [(5, 5), (4, 0)]),
    ((3, 5, 4, 2), [(2, 5), (1, 1)]),
    ((7, 7, 7, 3), [(3, 3)]),
]
SETTINGS = list(DECISIONS)


def artefacts():
    path = os.environ.get("MINSWIN_TEST_ARTIFACTS", os.path.join(ROOT, "test-artifacts"))
    path = os.path.join(path, "site")
    os.makedirs(path, exist_ok=True)
    return path


# ---------------------------------------------------------------------------- minswin's answer

def expected_token(H, W, window, shift, r, c):
    """What minswin says about token (r, c) of the map before the roll, computed here from
    minswin.ops.masks directly (not from the exported data)."""
    M, S = official_window_shift((H, W), window, shift)
    (Hp, Wp), (sh, sw) = forward_window_shift(H, W, M, S)
    rr, cc = (r - sh) % Hp, (c - sw) % Wp                  # where the roll puts it
    w = (rr // M) * (Wp // M) + cc // M
    n = (rr % M) * M + cc % M
    wr, wc = divmod(w, Wp // M)
    keys = [(((wr * M + j // M) + sh) % Hp, ((wc * M + j % M) + sw) % Wp) for j in range(M * M)]
    mask = attention_mask(Hp, Wp, M, (sh, sw))[w, n]
    return {"M": M, "shift": (sh, sw), "padded": (Hp, Wp), "window": w, "slot": n,
            "region": int(region_labels(Hp, Wp, M, (sh, sw))[rr, cc]),
            "mask": mask.tolist(), "index": relative_position_index(M)[n].tolist(),
            "attended": {k for k, v in zip(keys, mask) if v == 0},
            "masked": {k for k, v in zip(keys, mask) if v != 0},
            "padding": r >= H or c >= W}


def test_block_decisions_are_minswins():
    from website.explorer_data import block_decision
    for setting, decision in DECISIONS.items():
        assert block_decision(*setting) == decision, setting
        M, S = official_window_shift(setting[:2], *setting[2:])
        assert forward_window_shift(*setting[:2], M, S)[::-1] == decision[1:], setting


@pytest.mark.parametrize("setting", SETTINGS, ids=[f"{h}x{w}-w{m}-s{s}"
                                                   for h, w, m, s in SETTINGS])
def test_explorer_data_is_what_minswin_computes(setting):
    """Every token of the exported data, against minswin.ops.masks (no browser needed)."""
    from website.explorer_data import explorer_case
    case = explorer_case(*setting)
    Hp, Wp = case["used"]["padded"]
    for r in range(Hp):
        for c in range(Wp):
            want = expected_token(*setting, r, c)
            t = r * Wp + c
            p = case["after_of"][t]
            assert case["token_at"][p] == t
            w, n = case["window_of"][p], case["slot_of"][p]
            assert (w, n) == (want["window"], want["slot"]), (setting, r, c)
            assert case["region_of"][p] == want["region"], (setting, r, c)
            assert case["masks"][case["window_mask"][w]][n] == want["mask"], (setting, r, c)
            assert case["index"][n] == want["index"], (setting, r, c)
            assert bool(case["padding"][t]) == want["padding"], (setting, r, c)
            keys = {divmod(k, Wp) for k in case["window_tokens"][w]}
            assert keys == want["attended"] | want["masked"], (setting, r, c)


def test_site_refuses_a_folder_it_did_not_write(tmp_path):
    from website.build import check_out_folder
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="--out: .* did not write"):
        check_out_folder(str(tmp_path))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--out: expected a folder"):
        check_out_folder(str(tmp_path / "file"))


# ---------------------------------------------------------------------------- the built site

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A small site built here, or the one at $MINSWIN_SITE (to check a full `make site`)."""
    if os.environ.get("MINSWIN_SITE"):
        return pathlib.Path(os.environ["MINSWIN_SITE"]).resolve()
    pytest.importorskip("nbconvert", reason="the site extra: pip install -e .[site]")
    pytest.importorskip("jupytext", reason="the test extra: pip install -e .[test]")
    from make_notebooks import run_notebook
    from website.build import build_site
    work = tmp_path_factory.mktemp("site-build")
    mp = pytest.MonkeyPatch()
    for k, v in dict(MPLBACKEND="Agg", MINSWIN_SMALL="1",
                     MINSWIN_FIGURES=str(work / "figures")).items():
        mp.setenv(k, v)                                    # the kernels inherit them
    try:
        scripts = [os.path.join(ROOT, "tutorials", name) for name in TUTORIALS]
        with ThreadPoolExecutor(len(scripts)) as pool:     # two kernels start at once
            executed = list(pool.map(lambda s: run_notebook(s, str(work)), scripts))
        notebooks = list(zip(scripts, executed))
    finally:
        mp.undo()
    out = work / "site"
    build_site(str(out), notebooks, log=lambda *a: None, explorer_settings=SETTINGS)
    return out


def test_site_has_its_pages(site):
    names = {os.path.relpath(os.path.join(d, f), site) for d, _, fs in os.walk(site) for f in fs}
    for page in ("index.html", "explorer.html", "exercises.html", "api.html",
                 "tutorials/02_patch_embedding.html", "tutorials/03_patch_merging.html",
                 "thumbs/02_patch_embedding.png", "explorer/data/index.js",
                 "explorer/data/8x8-w4-s2.js"):
        assert page in names, page
    index = (site / "index.html").read_text()
    assert index.index("2. Patch embedding") < index.index("3. Patch merging")
    api = (site / "api.html").read_text()
    for name in ("minswin.attention_mask", "minswin.ops.masks.region_labels",
                 "minswin.viz.plot_window_mask"):
        assert f'id="{name}"' in api, name
    # no script, style, image or font from elsewhere (a link in the text may name a web page)
    from_elsewhere = re.compile(r"<(script|link|img|source)\b[^>]*\b(src|href)=[\"']?"
                                r"(https?:)?//|@import\s+url\(\s*[\"']?(https?:)?//", re.I)
    for path in [*site.rglob("*.html"), *site.rglob("*.css"), *site.rglob("*.js")]:
        found = from_elsewhere.search(path.read_text(encoding="utf-8"))
        assert not found, f"{path}: {found and found.group(0)}"


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium; .ci/run does it)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, url, width=1280, height=900):
    """A page with a record of console errors, page errors and requests off the disk."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(20_000)
    problems = []
    page.on("console", lambda m: m.type in ("error", "warning") and
            problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on("request", lambda r: not r.url.startswith(("file:", "data:")) and
            problems.append(f"request off the file system: {r.url}"))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems


def site_pages(site):
    return sorted(os.path.relpath(p, site) for p in site.rglob("*.html"))


def test_every_page_loads_clean_with_its_images_and_links(site, browser):
    pages = site_pages(site)
    tutorials = [p for p in pages if p.startswith("tutorials/")]
    assert len(tutorials) >= 2 and len(pages) == 4 + len(tutorials), pages
    ids, links = {}, []
    for rel in pages:
        page, problems = open_page(browser, (site / rel).as_uri())
        if rel == "explorer.html":
            page.wait_for_selector("body[data-ready=yes]")
        images = page.evaluate("""async () => {     // decoded, or the reason it is not
            const imgs = Array.from(document.images);
            const why = await Promise.all(imgs.map(i => i.decode().then(() => '', e => String(e))));
            return imgs.map((i, k) => [i.getAttribute('src').slice(0, 60), why[k], i.naturalWidth]);
        }""")
        links += [(rel, href) for href in page.evaluate(
            "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")]
        ids[str(site / rel)] = set(page.evaluate(
            "() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
        page.close()
        assert not problems, (rel, problems)
        assert all(not why and width > 0 for _, why, width in images), (rel, images)
        if rel == "index.html" or rel.startswith("tutorials/"):
            assert images, f"{rel}: no figure"
    internal = [(rel, href) for rel, href in links if urlparse(href).scheme == "file"]
    assert len(internal) > 50, internal                    # navigation, pager, contents, ...
    for rel, href in internal:                             # others: web pages named in text
        url = urlparse(href)
        target = unquote(url.path)
        assert os.path.isfile(target), f"{rel}: broken link {href}"
        if url.fragment:                                   # as a browser does: raw, decoded
            assert {url.fragment, unquote(url.fragment)} & ids[target], \
                f"{rel}: no #{url.fragment} in {target}"


# ---------------------------------------------------------------------------- the explorer

def choose(page, H, W, window, shift):
    page.select_option("#map", f"{H}x{W}")
    page.select_option("#window", str(window))
    page.select_option("#shift", str(shift))
    page.wait_for_selector(f"body[data-case='{H}x{W}-w{window}-s{shift}'][data-ready=yes]")


def shown(page):
    """What the page shows about the selected token, read from the DOM."""
    return page.evaluate("""() => {
        const cells = (sel) => Array.from(document.querySelectorAll(sel));
        const rc = (b) => [Number(b.dataset.r), Number(b.dataset.c)];
        return {
            region: document.getElementById('detail-region').textContent,
            window: document.getElementById('detail-window').textContent,
            slot: document.getElementById('detail-slot').textContent,
            status: document.getElementById('status').textContent,
            mask: cells('#mask-row td').map(td => [Number(td.dataset.j), td.dataset.value,
                                                   td.textContent]),
            index: cells('#index-row td').map(td => [Number(td.dataset.j), td.textContent]),
            sel: cells('#grid-before .cell.sel').map(rc),
            sel_after: cells('#grid-after .cell.sel').map(b => b.dataset.t),
            ok: cells('#grid-before .cell.key-ok').map(rc),
            masked: cells('#grid-before .cell.key-masked').map(rc),
            ok_after: cells('#grid-after .cell.key-ok').length,
            bias: cells('#bias-rows table').map(t => Array.from(t.querySelectorAll('td'))
                  .map(td => [td.dataset.value, td.textContent])),
            focused: document.activeElement && document.activeElement.dataset.r !== undefined
                     ? rc(document.activeElement) : null,
        };
    }""")


def assert_shows(got, setting, r, c):
    want = expected_token(*setting, r, c)
    where = (setting, (r, c))
    assert got["sel"] == [[r, c]], where
    assert got["region"] == str(want["region"]), where
    assert got["window"].split()[0] == str(want["window"]), where
    assert got["slot"].split()[2] == str(want["slot"]), where
    assert [j for j, _, _ in got["mask"]] == list(range(want["M"] ** 2)), where
    assert [float(v) for _, v, _ in got["mask"]] == want["mask"], where
    assert [float(text.replace("\u2212", "-")) for _, _, text in got["mask"]] == want["mask"]
    assert [int(text) for _, text in got["index"]] == want["index"], where
    assert {tuple(k) for k in got["ok"]} == want["attended"], where
    assert {tuple(k) for k in got["masked"]} == want["masked"], where
    assert got["ok_after"] == len(want["attended"]), where
    M, (sh, sw), (Hp, Wp) = want["M"], want["shift"], want["padded"]
    assert f"{M}x{M} window, shift ({sh}, {sw}) on a {Hp}x{Wp} map" in got["status"], where
    return want


def test_explorer_shows_what_minswin_computes(site, browser):
    page, problems = open_page(browser, (site / "explorer.html").as_uri())
    page.wait_for_selector("body[data-ready=yes]")
    for setting, tokens in CLICKS:
        choose(page, *setting)
        for r, c in tokens:
            page.click(f"#grid-before .cell[data-r='{r}'][data-c='{c}']")
            assert_shows(shown(page), setting, r, c)
        # the same token clicked on the rolled map selects the same thing
        r, c = tokens[0]
        t = page.get_attribute(f"#grid-before .cell[data-r='{r}'][data-c='{c}']", "data-t")
        page.click("#grid-before .cell[data-r='0'][data-c='0']")
        page.click(f"#grid-after .cell[data-t='{t}']")
        assert_shows(shown(page), setting, r, c)
    assert not problems, problems


def test_explorer_bias_is_the_trained_models(site, browser):
    import minswin
    model = minswin.pretrained("swin_digits")
    page, problems = open_page(browser, (site / "explorer.html").as_uri())
    page.wait_for_selector("body[data-ready=yes]")
    choose(page, 8, 8, 4, 2)
    for block_value, (i, j) in (("1", (0, 1)), ("2", (1, 0))):
        page.select_option("#block", block_value)
        bias = np.asarray(model.layers[i].blocks[j].attn.relative_position_bias()[0])
        for r, c in ((6, 6), (2, 3)):
            page.click(f"#grid-before .cell[data-r='{r}'][data-c='{c}']")
            n = expected_token(8, 8, 4, 2, r, c)["slot"]
            got = shown(page)["bias"]
            assert len(got) == bias.shape[0], (i, j)
            for h, row in enumerate(got):
                values = np.array([float(v) for v, _ in row])
                np.testing.assert_allclose(values, bias[h, n], rtol=0, atol=1e-6)
                assert [text for _, text in row] == [f"{v:.2f}" for v in values] or \
                    np.allclose([float(text) for _, text in row], values, atol=0.0051)
    choose(page, 56, 56, 7, 3)                             # swin_digits has no 7x7 table
    assert shown(page)["bias"] == []
    assert "4x4 windows" in page.text_content("#bias-note")
    assert not problems, problems


def test_explorer_is_keyboard_usable(site, browser):
    page, problems = open_page(browser, (site / "explorer.html").as_uri())
    page.wait_for_selector("body[data-ready=yes]")
    choose(page, 8, 8, 4, 2)
    page.click("#grid-before .cell[data-r='3'][data-c='3']")
    for key, (r, c) in (("ArrowRight", (3, 4)), ("ArrowDown", (4, 4)), ("ArrowLeft", (4, 3)),
                        ("ArrowUp", (3, 3)), ("End", (3, 7)), ("PageDown", (7, 7))):
        page.keyboard.press(key)
        got = shown(page)
        assert got["focused"] == [r, c], key
        assert_shows(got, (8, 8, 4, 2), r, c)
    # Tab from the settings reaches the grid at the selected token, and only it
    page.focus("#shift")
    page.keyboard.press("Tab")
    assert shown(page)["focused"] == [7, 7]
    assert not problems, problems


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_explorer_screenshots(site, browser, width):
    page, problems = open_page(browser, (site / "explorer.html").as_uri(), width=width)
    page.wait_for_selector("body[data-ready=yes]")
    page.click("#grid-before .cell[data-r='6'][data-c='6']")
    overflow = page.evaluate("() => document.scrollingElement.scrollWidth")
    path = os.path.join(artefacts(), f"explorer-{width}.png")
    page.screenshot(path=path, full_page=True)
    landing, more = open_page(browser, (site / "index.html").as_uri(), width=width)
    landing.screenshot(path=os.path.join(artefacts(), f"index-{width}.png"), full_page=True)
    wide = landing.evaluate("() => document.scrollingElement.scrollWidth")
    assert os.path.getsize(path) > 10_000
    assert overflow <= width and wide <= width, f"wider than the screen: {overflow}, {wide}"
    assert not problems + more, problems + more
    if width < 500:                                        # every page fits a phone's width
        for rel in site_pages(site):
            landing.goto((site / rel).as_uri())
            wide = landing.evaluate("() => document.scrollingElement.scrollWidth")
            assert wide <= width, f"{rel} is {wide} px wide on a {width} px screen"
