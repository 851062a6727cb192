"""Build the static website: tutorials, exercises, API and the window-and-mask explorer.

    site/index.html                 what minswin is, the tutorials (title, one line, thumbnail),
                                    how to install
    site/tutorials/NN_topic.html    each executed tutorial notebook: text, code, outputs, figures
    site/exercises.html             the gradient-check exercises and their skeletons
    site/api.html                   the docstrings of the public names
    site/explorer.html              windows, shift, regions, mask, index and trained bias
    site/explorer/                  its script, style and data (computed by explorer_data.py)
    site/static/site.css            the site's own style (system fonts: nothing to download)

Notebook pages are converted by nbconvert (Jupyter's own converter, with its JupyterLab
template; templates/minswin_page only removes what that template would fetch from a CDN and
adds the navigation). The exercises and API pages are built as notebooks of markdown cells
from minswin's own catalog and docstrings, and converted the same way. The landing page and
the explorer are two small Jinja templates. Nothing in the site loads anything from the
network, so it opens from the file system.
"""
import base64
import glob
import inspect
import io
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TEMPLATES = os.path.join(HERE, "templates")
STATIC = os.path.join(HERE, "static")
MARKER = ".minswin-site"              # a folder holding this file was written by build_site
THUMB_SIZE = (360, 240)               # thumbnails fit in this box, aspect kept


# ---------------------------------------------------------------------------- the notebooks

def tutorial_scripts(root=ROOT):
    """tutorials/NN_topic.py in order: a new tutorial is on the site without any edit here."""
    return sorted(glob.glob(os.path.join(root, "tutorials", "[0-9][0-9]_*.py")))


def executed_notebook(script, fresh=False, log=print):
    """The executed notebook of a tutorial: tutorials/NN_topic.ipynb when it is newer than the
    script (`make notebooks` wrote it) and `fresh` is false, else executed now and written
    there, as make notebooks does."""
    import jupytext
    import nbformat
    path = os.path.splitext(script)[0] + ".ipynb"
    if not fresh and os.path.isfile(path) and os.path.getmtime(path) >= os.path.getmtime(script):
        nb = nbformat.read(path, as_version=4)
        if _was_run(nb):
            return nb
    if os.path.join(ROOT, "scripts") not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from make_notebooks import run_notebook
    t0 = time.perf_counter()
    log(f"minswin: executing {os.path.relpath(script)} ...")
    nb = run_notebook(script, os.getcwd())
    jupytext.write(nb, path)
    log(f"minswin: wrote {os.path.relpath(path)} ({time.perf_counter() - t0:.0f} s)")
    return nb


def _was_run(nb):
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    return bool(code) and all(c.get("execution_count") is not None for c in code)


def _first_markdown(nb):
    return next((c.source for c in nb.cells if c.cell_type == "markdown"), "")


def tutorial_title(nb, script):
    """The notebook's first heading ("5. Shifted windows and the -100 mask")."""
    for line in _first_markdown(nb).splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return os.path.splitext(os.path.basename(script))[0]


def readme_lines(root=ROOT):
    """file name -> its line in tutorials/README.md's table ("what it shows")."""
    path = os.path.join(root, "tutorials", "README.md")
    lines = {}
    if os.path.isfile(path):
        for m in re.finditer(r"^\| `([0-9][0-9]_\w+\.py)` \| (.+?) \|$",
                             open(path, encoding="utf-8").read(), re.M):
            lines[m.group(1)] = m.group(2)
    return lines


def tutorial_line(nb, script, lines):
    """One line about a tutorial: its row of the tutorials' README, or else the first
    sentence of its introduction."""
    name = os.path.basename(script)
    if name in lines:
        return lines[name]
    paragraphs = [p for p in _first_markdown(nb).split("\n\n") if not p.startswith("#")]
    text = " ".join(paragraphs[0].split()) if paragraphs else ""
    return re.split(r"(?<=[.:])\s", text, maxsplit=1)[0]


def first_png(nb):
    """The bytes of the notebook's first inline figure, or None."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                return base64.b64decode(data["image/png"])
    return None


def write_thumbnail(png, path):
    from PIL import Image
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.thumbnail(THUMB_SIZE)
    img.save(path, optimize=True)
    return img.size


# ---------------------------------------------------------------------------- pages as notebooks

def markdown_notebook(cells, title):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text) for text in cells]
    nb.metadata["title"] = title
    return nb


def readme_section(heading, path):
    """The text of a markdown section (`## heading` up to the next `## `), heading left out."""
    text = open(path, encoding="utf-8").read()
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return m.group(1).strip() if m else ""


def exercises_notebook(root=ROOT):
    """The exercises page: how to start and check one, then each exercise and its skeleton."""
    from minswin.exercises import EXERCISES, skeleton_path
    intro = readme_section("Exercises", os.path.join(root, "tutorials", "README.md"))
    cells = ["# Exercises: write a backward pass, get a verdict in numbers\n\n" + intro]
    for name, ex in EXERCISES.items():
        labels = ", ".join(c.label for c in ex.cases())
        skeleton = open(skeleton_path(name), encoding="utf-8").read()
        cells.append(
            f"## {name}\n\n**{ex.title}.** {ex.summary}.\n\n"
            f"You write `{ex.function}(dout, cache)`, returning "
            f"{', '.join(f'`{g}`' for g in ex.grads)}. It is checked on: {labels}.\n\n"
            f"    minswin exercise start {name}\n"
            f"    minswin exercise check {name} {ex.skeleton}\n\n"
            f"The skeleton, `{ex.skeleton}`:\n\n```python\n{skeleton.rstrip()}\n```")
    return markdown_notebook(cells, "minswin: exercises")


def _public_members(module):
    """Functions and classes a module defines itself, public names only, in source order."""
    found = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", None) == module.__name__:
            found.append((name, obj))
    return sorted(found, key=lambda kv: _line(kv[1]))


def _line(obj):
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return 0


def _signature(obj):
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def _entry(qualname, obj, level="###"):
    """A markdown block: the name as a heading, its signature and docstring verbatim."""
    if inspect.ismodule(obj):
        head, sig = "module", ""
    elif inspect.isclass(obj):
        head, sig = "class", _signature(obj)
    else:
        head, sig = "def", _signature(obj)
    if not (callable(obj) or inspect.ismodule(obj)):       # a constant: its type and value
        value = f"dict with keys {list(obj)}" if isinstance(obj, dict) else repr(obj)
        return (f"{level} {qualname}\n\n```python\n{qualname}: {type(obj).__name__}\n"
                f"# {value[:300]}\n```\n")
    doc = inspect.getdoc(obj)
    generated = inspect.isclass(obj) and doc and doc.startswith(obj.__name__ + "(")
    text = f"{level} {qualname}\n\n```python\n{head} {qualname}{sig}\n```\n\n"
    if generated:                      # a dataclass's or NamedTuple's: the signature says it
        pass
    elif doc:
        text += "```text\n" + doc + "\n```\n"
    else:
        text += "*(no docstring)*\n"
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            if name.startswith("_") or not callable(member) and not isinstance(member,
                                                                                  property):
                continue
            member_doc = inspect.getdoc(member)
            sig = "" if isinstance(member, property) else _signature(member)
            text += f"\n**`{name}{sig}`**"
            text += ("\n\n```text\n" + member_doc + "\n```\n") if member_doc else "\n"
    return text


def api_groups():
    """(title, module, [(qualified name, object)]) for the API page: the names `import
    minswin` offers, the plain-tier ops module by module, and the pictures."""
    import importlib

    import minswin
    import minswin.ops
    import minswin.viz
    groups = [("minswin", minswin,
               [(f"minswin.{n}", getattr(minswin, n)) for n in minswin.__all__])]
    ops_dir = os.path.dirname(minswin.ops.__file__)
    for path in sorted(glob.glob(os.path.join(ops_dir, "[a-z]*.py"))):
        name = "minswin.ops." + os.path.splitext(os.path.basename(path))[0]
        module = importlib.import_module(name)
        groups.append((name, module, [(f"{name}.{n}", o) for n, o in _public_members(module)]))
    groups.append(("minswin.viz", minswin.viz,
                   [(f"minswin.viz.{n}", getattr(minswin.viz, n))
                    for n in dict.fromkeys(minswin.viz.__all__)]))
    return groups


def api_notebook():
    groups = api_groups()
    contents = "\n".join(f"* [{title}](#{title}) ({len(items)} names)"
                         for title, _, items in groups)
    cells = ["# API\n\nGenerated from the docstrings when the site was built. The plain tier "
             "(`minswin.ops`) is the maths as a learner reads it; `minswin.fast` has twins of "
             "some of those functions with the same names and arguments.\n\n" + contents]
    for title, module, items in groups:
        doc = inspect.getdoc(module) or ""
        cells.append(f"## {title}\n\n```text\n{doc}\n```")
        cells.extend(_entry(q, o) for q, o in items)
    return markdown_notebook(cells, "minswin: API")


# ---------------------------------------------------------------------------- HTML

def html_exporter():
    from nbconvert import HTMLExporter
    return HTMLExporter(template_name="minswin_page", extra_template_basedirs=[TEMPLATES],
                        exclude_input_prompt=False)


def export(exporter, nb, site, title):
    body, _ = exporter.from_notebook_node(nb, resources={"site": site,
                                                         "metadata": {"name": title}})
    return body


def jinja_env():
    import jinja2
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([TEMPLATES, os.path.join(TEMPLATES, "minswin_page")]),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)


def markdown_html(text):
    from nbconvert.filters import markdown2html_mistune
    return markdown2html_mistune(text)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# ---------------------------------------------------------------------------- the whole site

def check_out_folder(out):
    """A run owns its folder: `out` must be absent, empty or a site this builder wrote."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out: expected a folder for the site, got the file {out!r}")
    if os.path.isdir(out) and os.listdir(out) and not os.path.exists(os.path.join(out, MARKER)):
        raise ValueError(f"--out: {out!r} is a folder that this builder did not write (no "
                         f"{MARKER} in it); choose another, or empty it first")


def build_site(out, notebooks, log=print, explorer_settings=None):
    """Write the site into `out` from [(script path, executed notebook), ...].

    The site is built in a temporary folder beside `out` and moved into place at the end, so
    `out` is either the old site or the whole new one, never half of each.
    `explorer_settings`: the (H, W, window, shift) cases to export (default: all of them).
    """
    from website import explorer_data

    out = os.path.abspath(out)
    check_out_folder(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".site-", dir=parent)
    try:
        pages = _build_into(tmp, notebooks, log, explorer_data, explorer_settings)
        open(os.path.join(tmp, MARKER), "w").close()
        if os.path.isdir(out):
            old = out + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return pages


def _build_into(site_dir, notebooks, log, explorer_data, explorer_settings):
    t0 = time.perf_counter()
    exporter, env = html_exporter(), jinja_env()
    shutil.copytree(STATIC, os.path.join(site_dir, "static"))
    lines = readme_lines()

    tutorials = []
    for script, nb in notebooks:
        stem = os.path.splitext(os.path.basename(script))[0]
        tutorials.append({"stem": stem, "nb": nb, "title": tutorial_title(nb, script),
                          "line": markdown_inline(tutorial_line(nb, script, lines)),
                          "href": f"tutorials/{stem}.html"})
    for i, t in enumerate(tutorials):
        site = {"root": "../",
                "prev": _link(tutorials[i - 1], "") if i > 0 else None,
                "next": _link(tutorials[i + 1], "") if i + 1 < len(tutorials) else None}
        _write(os.path.join(site_dir, t["href"]), export(exporter, t["nb"], site, t["title"]))
        png = first_png(t["nb"])
        t["thumb"] = None
        if png is not None:
            t["thumb"] = f"thumbs/{t['stem']}.png"
            os.makedirs(os.path.join(site_dir, "thumbs"), exist_ok=True)
            t["thumb_size"] = write_thumbnail(png, os.path.join(site_dir, t["thumb"]))
        log(f"minswin: site page {t['href']}")

    top = {"root": "", "prev": None, "next": None}
    _write(os.path.join(site_dir, "exercises.html"),
           export(exporter, exercises_notebook(), top, "minswin: exercises"))
    _write(os.path.join(site_dir, "api.html"),
           export(exporter, api_notebook(), top, "minswin: API"))
    log("minswin: site pages exercises.html, api.html")

    n_cases = write_explorer(site_dir, env, explorer_data, explorer_settings)
    log(f"minswin: site page explorer.html ({n_cases} settings)")

    readme = os.path.join(ROOT, "README.md")
    intro = open(readme, encoding="utf-8").read().split("\n## ", 1)[0]
    intro = intro.split("\n", 1)[1] if intro.startswith("# ") else intro
    _write(os.path.join(site_dir, "index.html"), env.get_template("landing.html.j2").render(
        resources={"site": top}, tutorials=tutorials,
        about=markdown_html(intro.strip()),
        install=markdown_html(readme_section("Quick start", readme)),
        built=time.strftime("%Y-%m-%d")))
    pages = 4 + len(tutorials)
    log(f"minswin: site built, {pages} pages ({time.perf_counter() - t0:.1f} s)")
    return pages


def _link(t, prefix):
    return {"href": prefix + os.path.basename(t["href"]), "title": t["title"]}


def markdown_inline(text):
    """One line of markdown as inline HTML (the <p> that mistune wraps it in, removed)."""
    from markupsafe import Markup
    body = markdown_html(text).strip()
    body = re.sub(r"^<p>(.*)</p>$", r"\1", body, flags=re.S)
    return Markup(body)


def write_explorer(site_dir, env, explorer_data, settings=None):
    settings = settings or explorer_data.all_settings()
    data_dir = os.path.join(site_dir, "explorer", "data")
    os.makedirs(data_dir)
    index = explorer_data.index_data()
    keys = {explorer_data.case_key(*s) for s in settings}
    index["files"] = {k: v for k, v in index["files"].items() if k in keys}
    for s in settings:
        case = explorer_data.explorer_case(*s)
        _write(os.path.join(site_dir, "explorer", index["files"][case["key"]]),
               explorer_data.as_script("MINSWIN_CASES", case["key"], case))
    _write(os.path.join(site_dir, "explorer", index["bias_file"]),
           explorer_data.as_script("MINSWIN_BIAS", "bias", explorer_data.trained_bias()))
    _write(os.path.join(data_dir, "index.js"),
           explorer_data.as_script("MINSWIN_EXPLORER", "index", index))
    for name in ("explorer.js", "explorer.css"):
        shutil.copyfile(os.path.join(HERE, "explorer", name),
                        os.path.join(site_dir, "explorer", name))
    _write(os.path.join(site_dir, "explorer.html"), env.get_template("explorer.html.j2").render(
        resources={"site": {"root": ""}}))
    return len(settings)


def site_size(out):
    """(files, bytes) of a built site."""
    files = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs]
    return len(files), sum(os.path.getsize(f) for f in files)
