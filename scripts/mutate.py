"""Mutation testing of one area of minswin with mutmut: `make mutate AREA=minswin/exercises`.

mutmut changes one thing at a time in the area's code (a `<` into `<=`, a `+` into `-`, a
constant, a keyword argument dropped...) and runs the tests that matter for that area against
each change. A change that no test notices ("survived") is either a missing test or a change
that alters no behaviour ("equivalent"). Equivalent ones are listed, with the reason, in
tests/mutation/equivalent.toml: by mutant name (`mutant = "..."`, reported as equivalent, not
as a survivor; a name stays valid while its function is unchanged) or by source line
(`line = '<regex>'`, handed to mutmut as a do_not_mutate_pattern: every mutation of the
matching lines is skipped). Either way the next run is quiet about them.

The run happens in a scratch copy (build/mutate/<area>/), never in the working tree, so that an
interrupted run leaves nothing behind. The score is printed at the end and written to
build/mutate/<area>/score.txt.

    python scripts/mutate.py AREA [--max-children N] [--time-limit SECONDS]

AREA is a key of tests/mutation/areas.toml (a folder or a module: minswin/exercises,
minswin/viz, minswin/optim.py, ...). A run takes minutes to an hour per area on 2 cores: it is
not part of `make test`.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
TABLES = ROOT / "tests" / "mutation"


def load_tables():
    with open(TABLES / "areas.toml", "rb") as f:
        areas = tomllib.load(f)["area"]
    with open(TABLES / "equivalent.toml", "rb") as f:
        equivalent = tomllib.load(f).get("equivalent", [])
    return areas, equivalent


def _toml_list(items):
    return "[" + ", ".join(_q(str(x)) for x in items) + "]"


def _q(s):
    """A TOML literal string ('...'): regular expressions keep their backslashes."""
    if "'" in s:
        raise ValueError(f"equivalent.toml: a pattern may not contain a single quote: {s!r}")
    return f"'{s}'"


def write_config(work, area, spec, equivalent):
    """The scratch copy's pyproject.toml: minswin's own, with a [tool.mutmut] for this area."""
    patterns = [e["line"] for e in equivalent if e["area"] == area and "line" in e]
    only = spec.get("only", [])
    text = (ROOT / "pyproject.toml").read_text()
    text += "\n[tool.mutmut]\n"
    text += f"source_paths = {_toml_list(spec.get('source_paths', [area]))}\n"
    if only:
        text += f"only_mutate = {_toml_list(only)}\n"
    text += f"do_not_mutate = {_toml_list(spec.get('skip', []))}\n"
    text += f"do_not_mutate_patterns = {_toml_list(patterns)}\n"
    text += f"pytest_add_cli_args_test_selection = {_toml_list(spec['tests'])}\n"
    text += "pytest_add_cli_args = ['-p', 'no:cacheprovider', '-q', '-x', '-m', 'not gpu']\n"
    text += "mutate_only_covered_lines = false\n"
    (work / "pyproject.toml").write_text(text)


def main(argv=None):
    areas, equivalent = load_tables()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("area", help="one of: " + ", ".join(areas))
    p.add_argument("--max-children", type=int, default=1,
                   help="mutants tested in parallel (default 1: the machine is shared)")
    p.add_argument("--time-limit", type=float, default=3600,
                   help="stop the run after this many seconds (default 3600); the score "
                        "then counts only the mutants tested")
    p.add_argument("--fresh", action="store_true", help="forget the results of earlier runs")
    p.add_argument("--survivors", action="store_true",
                   help="test again only the survivors of the last run (after adding tests)")
    args = p.parse_args(argv)
    if args.area not in areas:
        print(f"mutate: AREA: expected one of {', '.join(areas)}, got {args.area!r}",
              file=sys.stderr)
        return 2
    if args.max_children < 1:
        print(f"mutate: --max-children: expected a number >= 1, got {args.max_children}",
              file=sys.stderr)
        return 2
    if not 0 < args.time_limit < float("inf"):
        print(f"mutate: --time-limit: expected seconds > 0, got {args.time_limit:g}",
              file=sys.stderr)
        return 2
    spec = areas[args.area]
    work = ROOT / "build" / "mutate" / args.area.replace("/", "_").removesuffix(".py")
    names = []
    if args.survivors:
        if not (work / "score.txt").is_file():
            print(f"mutate: --survivors: no earlier run of {args.area} to take them from",
                  file=sys.stderr)
            return 2
        names = [line.split()[0] for line in (work / "score.txt").read_text().splitlines()[1:]
                 if line.strip()]
    if args.fresh and work.exists():
        shutil.rmtree(work)
    # tests may have changed since the last run: which tests reach which function, again
    (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("minswin", "tests"):        # refresh the copy, keep mutmut's own mutants/
        shutil.rmtree(work / name, ignore_errors=True)
        shutil.copytree(ROOT / name, work / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    write_config(work, args.area, spec, equivalent)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(work),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    mutmut = [sys.executable, "-m", "mutmut"]
    print(f"mutate: {args.area}: tests {' '.join(spec['tests'])}; "
          f"{sum(e['area'] == args.area for e in equivalent)} equivalent mutant(s) listed; "
          f"time limit {args.time_limit:g} s", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(mutmut + ["run", "--max-children", str(args.max_children)] + names,
                            cwd=work, env=env, start_new_session=True)
    try:
        proc.wait(timeout=args.time_limit)
    except subprocess.TimeoutExpired:
        print(f"mutate: time limit of {args.time_limit:g} s reached; stopping", flush=True)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.monotonic() - start
    res = subprocess.run(mutmut + ["results", "--all", "true"], cwd=work, env=env,
                         capture_output=True, text=True)
    counts = {}
    survivors = []
    explained = {e["mutant"]: e.get("kind", "equivalent") for e in equivalent
                 if e["area"] == args.area and "mutant" in e}
    for line in res.stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        if name in explained and status in ("survived", "no tests"):
            status = explained[name]          # "equivalent", or "presentation": pixels only
        counts[status] = counts.get(status, 0) + 1
        if status in ("survived", "no tests"):
            survivors.append(f"{name}  ({status})")
    # "no tests": no test runs the mutated function (it counts against the score, as a
    # survivor); "not checked": the time limit came first; "equivalent" and "presentation"
    # (a font size, a colour: the pixels, which the suite does not pin by design): listed in
    # equivalent.toml. All three are left out of the score and counted beside it
    killed = counts.get("killed", 0) + counts.get("timeout", 0) + counts.get("segfault", 0)
    tested = killed + counts.get("survived", 0) + counts.get("no tests", 0)
    score = f"{killed}/{tested} = {100 * killed / tested:.1f}%" if tested else "no mutant tested"
    summary = (f"mutate: {args.area}: killed {score} in {elapsed:.0f} s; "
               + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    (work / "score.txt").write_text(summary + "\n" + "\n".join(survivors) + "\n")
    print(summary)
    for s in survivors:
        print("  survived:", s)
    if survivors:
        print(f"see one with: cd {work} && {sys.executable} -m mutmut show NAME")
    return 0


if __name__ == "__main__":
    sys.exit(main())
