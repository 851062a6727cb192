"""Ending a child process and everything it started, even what left its process group.

Killing the child's process group misses a grandchild that called `os.setsid()` (or
`setpgid`), and once its parent is gone such an orphan is adopted by init, with nothing left
to tie it to the grader. On Linux the grader therefore makes itself a *child subreaper*
(prctl PR_SET_CHILD_SUBREAPER) while the learner's file runs: orphans of its descendants are
adopted by the grader instead of init, so every process the learner started stays in the
grader's tree, where `kill_tree` finds it through /proc and ends it. Elsewhere only the
process group is killed.
"""
import ctypes
import os
import signal
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36          # linux/prctl.h


def set_subreaper(on):
    """Make this process a child subreaper (on=True) or not; True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, int(bool(on)), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def parents():
    """{pid: parent pid} of every process /proc shows (empty without /proc)."""
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:                                    # ended meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1:
            table[int(name)] = int(fields[1])
    return table


def children_of_self():
    me = os.getpid()
    return {pid for pid, parent in parents().items() if parent == me}


def _tree(roots, table):
    """roots and all their descendants in the parent table."""
    kids = {}
    for pid, parent in table.items():
        kids.setdefault(parent, []).append(pid)
    seen, todo = set(), [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(kids.get(pid, ()))
    return seen


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(proc, children_before, seconds=5.0):
    """SIGKILL `proc` (a subprocess.Popen), its process group and every descendant, including
    orphans this process adopted as a subreaper (its children not in `children_before`); reap
    the adopted ones. Repeats until none is left (a process may fork while it is killed), for
    at most `seconds`."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    me, end = os.getpid(), time.monotonic() + seconds
    while True:
        table = parents()
        roots = {pid for pid, parent in table.items()
                 if parent == me and pid not in children_before and pid != proc.pid}
        if proc.poll() is None:
            roots.add(proc.pid)
        tree = _tree(roots, table)
        if not tree or time.monotonic() > end:
            break
        for pid in tree:
            _kill(pid)
        for pid in roots - {proc.pid}:                    # adopted: ours to reap
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if proc.pid in roots:
            proc.wait()
    proc.wait()
