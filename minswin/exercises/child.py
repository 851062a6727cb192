"""The learner's file in a child process: run it with a time limit, read back only arrays.

`minswin exercise check` (grader.grade_file) must not trust the learner's code: it may call
os._exit, patch the grader, loop forever, print without end or crash the interpreter. So the
file runs in a child process, which imports it, calls its backward on every case and writes

    grads.npz     the returned arrays (numeric dtypes only), opened with allow_pickle=False
    status.json   how each call went: returned (a description of the value) or raised (the
                  exception's type, message and traceback as text), or why the import failed

into a fresh temporary folder. The parent reads those two files and nothing else, and only
as regular files of bounded size (a FIFO, a device or a link there is refused, not waited on),
with every array's header checked before any memory is taken (minswin.npz); a child that ends
without them, is killed by a signal, runs out of time or prints more than MAX_OUTPUT bytes is
reported as such. The child's address space is limited (RLIMIT_AS, soft and hard, set before
the learner's file is imported), and the child and all it started are killed at the end
(process_tree.kill_tree). Every comparison and verdict is made in the parent
(grader.py). This is isolation, not a sandbox: the learner's code can still read and write
files like any program the learner runs.
"""
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import zipfile
from typing import NamedTuple

import numpy as np

from ..npz import read_npz
from .catalog import get_exercise
from .learner import LoadError, Raised, Returned, call_learner, load_function
from .process_tree import children_of_self, kill_tree, set_subreaper

MAX_OUTPUT = 1 << 20       # bytes the learner's code may print before it is stopped
MAX_STATUS = 1 << 20       # bytes of status.json the grader reads
MAX_GRADS = 64 << 20       # bytes of arrays the grader reads from grads.npz (the exercises'
                           # gradients are a few KB)
_SHOWN = 4000              # characters of that output shown (head and tail)
_CUT = 8000                # characters kept of a learner's exception message or traceback


# ---------------------------------------------------------------------------- what crosses over
# (LoadError, Returned, Raised: learner.py, where they are made)

class Foreign:
    """A value the learner's backward returned that is not an array (or an array of a dtype
    that cannot travel without pickle), as the child process described it."""

    def __init__(self, type_name):
        self.type_name = type_name


_CHILD = ("import sys; from minswin.exercises.child import child_main; "
          "sys.exit(child_main(sys.argv[1:]))")
OUT_OF_MEMORY = 86         # the child's exit code when the memory limit stopped it outside
                           # the learner's backward (importing, writing the results)


# ---------------------------------------------------------------------------- the parent: running

def signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _kill_group(proc):
    """End the child and anything it started (it leads its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Output(threading.Thread):
    """Reads what the child prints, keeps its start and its end, and stops the child once it
    has printed more than MAX_OUTPUT bytes."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.head, self.tail = proc, bytearray(), bytearray()
        self.count, self.flooded = 0, False

    def run(self):
        try:
            self._read(self.proc.stdout.fileno())
        except (OSError, ValueError):   # the pipe was closed under us (a process that left
            pass                        # the group kept it open): what was read is kept

    def _read(self, fd):
        while chunk := os.read(fd, 1 << 16):
            self.count += len(chunk)
            self.head += chunk[:max(0, 3 * _SHOWN // 4 - len(self.head))]
            self.tail = (self.tail + chunk)[-(_SHOWN // 4):]
            if self.count > MAX_OUTPUT and not self.flooded:
                self.flooded = True
                _kill_group(self.proc)

    def text(self):
        n_head = len(self.head)
        if self.count <= n_head:
            data = bytes(self.head)
        elif self.count <= n_head + len(self.tail):
            data = bytes(self.head) + bytes(self.tail[-(self.count - n_head):])
        else:
            data = (bytes(self.head) + f"\n[... {self.count - n_head - len(self.tail):,} "
                    f"bytes left out ...]\n".encode() + bytes(self.tail))
        return data.decode("utf-8", errors="replace")


class ChildRun(NamedTuple):
    returncode: int
    timed_out: bool
    flooded: bool
    printed: str


def default_memory():
    """The learner's memory limit by default: a quarter of the machine's memory (bytes)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def run_child(ex, path, work, timeout, memory=None):
    """Run the learner's file in a child process for at most `timeout` seconds, with at most
    `memory` bytes of address space for the learner's code (default_memory() when None); end
    it and everything it started (process_tree.kill_tree). What it printed, how it ended."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1",
               PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH"))
                                          if p))
    memory = default_memory() if memory is None else int(memory)
    before = children_of_self()
    subreaper = set_subreaper(True)
    try:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, ex.name, path,
                                 str(memory), work],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        reader = _Output(proc)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            kill_tree(proc, before)            # also whatever the learner's code left running
            reader.join(timeout=10)
            proc.stdout.close()
    finally:
        if subreaper:
            set_subreaper(False)
    return ChildRun(proc.returncode, timed_out, reader.flooded, reader.text())


# ---------------------------------------------------------------------------- the child

def _describe(value, arrays, key, top=True):
    """A JSON description of a returned value; its numeric arrays go into `arrays`."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            return {"other": f"NumPy array of dtype {value.dtype}"}
        arrays[key] = np.asarray(value)
        return {"array": key}
    if value is None:
        return {"none": True}
    if top and isinstance(value, (tuple, list)):
        return {"seq": "list" if isinstance(value, list) else "tuple",
                "items": [_describe(v, arrays, f"{key}_{i}", False)
                          for i, v in enumerate(value)]}
    return {"other": type(value).__name__}


def _limit_memory(extra):
    """Let this process's address space grow by at most `extra` bytes from here on (soft and
    hard limit: the learner's code cannot raise it again). Without the resource module
    (Windows) nothing is limited."""
    try:
        import resource
    except ImportError:                                    # pragma: no cover - not POSIX
        return
    try:
        with open("/proc/self/statm") as f:
            now = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        now = 0
    limit = now + extra
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def child_main(argv):
    """In the child process: import the learner's file, call its backward on every case,
    write grads.npz (plain arrays) and status.json into the folder argv[3] (argv[2]: the
    memory limit in bytes). Compares nothing."""
    try:
        return _child_main(argv)
    except MemoryError:
        os._exit(OUT_OF_MEMORY)


def _child_main(argv):
    name, path, memory, work = argv
    _limit_memory(int(memory))
    ex = get_exercise(name)
    arrays = {}
    try:
        fn = load_function(path, ex)
        outcomes = call_learner(ex, fn, ex.cases())
        status = {"load": {"status": "ok"}, "outcomes": []}
    except LoadError as err:
        outcomes = []
        status = {"load": {"status": err.status, "message": err.message[:_CUT],
                           "traceback": err.tb[-_CUT:]}, "outcomes": []}
    for ci, o in enumerate(outcomes):
        if isinstance(o, Raised):
            status["outcomes"].append({"kind": "raised", "type": o.type_name,
                                       "message": o.message[:_CUT],
                                       "traceback": o.traceback[-_CUT:],
                                       "not_implemented": o.not_implemented})
        else:
            status["outcomes"].append({"kind": "returned",
                                       "value": _describe(o.value, arrays, f"case{ci}")})
    np.savez(os.path.join(work, "grads.npz"), **arrays)
    with open(os.path.join(work, "status.json"), "w") as f:
        json.dump(status, f)
    return 0


# ---------------------------------------------------------------------------- the parent: reading

class Unreadable(Exception):
    """The child's files do not have the form child_main writes."""


def _rebuild(desc, npz, top=True):
    if not isinstance(desc, dict):
        raise Unreadable(f"a value is described as {type(desc).__name__}")
    if "array" in desc:
        a = npz[str(desc["array"])]
        if a.dtype.kind not in "biufc":
            raise Unreadable(f"an array of dtype {a.dtype}")
        return a
    if desc.get("none") is True:
        return None
    if top and desc.get("seq") in ("tuple", "list"):
        items = [_rebuild(d, npz, False) for d in desc["items"]]
        return items if desc["seq"] == "list" else tuple(items)
    if "other" in desc:
        return Foreign(str(desc["other"])[:100])
    raise Unreadable(f"an unknown description {sorted(desc)}")


def _read_regular(path, limit):
    """The bytes of `path` if it is a regular file (not a FIFO, device or link: those could
    block the grader or stand for anything) of at most `limit` bytes; None when absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise Unreadable(f"{os.path.basename(path)} cannot be opened as a plain file "
                         f"({err.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"{os.path.basename(path)} is not a regular file")
        if info.st_size > limit:
            raise Unreadable(f"{os.path.basename(path)} is {info.st_size:,} bytes, more than "
                             f"the grader reads ({limit:,})")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:
                raise Unreadable(f"{os.path.basename(path)} grew past {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_results(cases, work):
    """The child's outcomes (or its LoadError), read without unpickling anything and without
    allocating what the files announce; None when the child wrote no status."""
    info = os.lstat(work) if os.path.lexists(work) else None
    if info is None or not stat.S_ISDIR(info.st_mode):
        raise Unreadable("the grader's work folder was removed or replaced (by a file or a "
                         "link)")
    status_path, grads_path = (os.path.join(work, n) for n in ("status.json", "grads.npz"))
    try:
        data = _read_regular(status_path, MAX_STATUS)
        if data is None:
            return None
        status = json.loads(data)
        load = status["load"]
        if load["status"] != "ok":
            if load["status"] not in ("error", "no function"):
                raise Unreadable(f"unknown load status {load['status']!r}")
            return LoadError(load["status"], str(load["message"]), str(load["traceback"]))
        grads = _read_regular(grads_path, MAX_GRADS)
        if grads is None:
            raise Unreadable("grads.npz is missing")
        npz = read_npz(grads, max_bytes=MAX_GRADS)
        outcomes = []
        for o in status["outcomes"]:
            if o["kind"] == "raised":
                outcomes.append(Raised(str(o["type"]), str(o["message"]),
                                       str(o["traceback"]), o["not_implemented"] is True))
            elif o["kind"] == "returned":
                outcomes.append(Returned(_rebuild(o["value"], npz)))
            else:
                raise Unreadable(f"unknown outcome {o['kind']!r}")
    except Unreadable:
        raise
    except RecursionError:
        raise Unreadable("status.json is nested deeper than the grader ever writes") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as err:
        raise Unreadable(f"{type(err).__name__}: {str(err)[:300]}") from None
    n_cases = len(cases)
    complete = len(outcomes) == n_cases or (outcomes and isinstance(outcomes[-1], Raised)
                                            and len(outcomes) <= n_cases)
    if not complete:
        raise Unreadable(f"results for {len(outcomes)} of {n_cases} cases")
    return outcomes
