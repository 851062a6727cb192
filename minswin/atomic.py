"""Files that are whole or absent, and folders that one run owns.

Every file minswin writes goes through `write_atomically`: it is written under a temporary
name in the same folder, flushed to disk, and renamed over the target in one step, with
Ctrl-C (SIGINT) and SIGTERM held back until the rename is done. Whatever happens meanwhile
(an error, a full disk, Ctrl-C pressed twice), the target holds either its old bytes or the
new ones, and no file is left under a temporary name.

`replace_together` does the same for a set of files that belong together (save_pretrained's
config.json and model.safetensors): all are written first, then renamed in a row with
signals held; if a rename fails, the ones already renamed are put back.

`owned_folder` makes a training run the only owner of its output folder: an exclusive
`flock` on the folder, held until the run ends and released by the kernel if the process
dies, so a second run on the same folder is refused before it writes anything. The folder is
created only here, and removed again if the run ends without writing anything into it. Only a
process killed outright (SIGKILL, power loss) can leave a temporary behind; the next run that
takes the folder removes those whose writer is gone.
"""
import contextlib
import os
import re
import signal
import threading

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_held():
    """Inside the block, SIGINT and SIGTERM are recorded instead of acted on; on leaving it
    they are delivered again, in order, to the handlers that were in place (so Ctrl-C still
    interrupts, just after the block). Outside the main thread Python cannot change signal
    handlers, and nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived, old = [], {}

    def record(signum, frame):
        arrived.append(signum)

    try:
        for sig in HELD_SIGNALS:
            old[sig] = signal.signal(sig, record)
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in arrived:
            signal.raise_signal(sig)


def temporary_name(path):
    """A hidden name beside `path`, unique to this process and call, with the same extension
    (np.savez and safetensors choose the format by it): `.last.safetensors.1234-ab12.tmp
    .safetensors`-like names never collide between two writers of one path."""
    folder, name = os.path.split(os.fspath(path))
    ext = os.path.splitext(name)[1]
    return os.path.join(folder, f".{name}.{os.getpid()}-{os.urandom(4).hex()}.tmp{ext}")


def _normal_permissions(path):
    """rw for the owner, r for others as the umask allows (safetensors writes 0600,
    mkstemp-like writers too)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _flush_to_disk(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def write_atomically(path, write):
    """Call write(tmp_path) to write the file, then rename it to `path` (see the module
    docstring). Any exception (KeyboardInterrupt included) removes the temporary file and
    propagates; `path` is then unchanged."""
    return _place(path, write, os.replace)


def create_atomically(path, write):
    """Like write_atomically, but never replaces a file: the whole new file appears at `path`
    only if nothing is there (a hard link made from the temporary, which fails if `path`
    exists), else FileExistsError and nothing changes."""
    return _place(path, write, os.link)


def _write_whole(tmp, write):
    """write(tmp), then normal permissions and the bytes on disk: a file ready to be named."""
    write(tmp)
    _normal_permissions(tmp)
    _flush_to_disk(tmp)


def _place(path, write, name):
    """Write the file under a temporary name, then name(tmp, path) (os.replace or os.link)
    with signals held; the temporary name never outlives the call."""
    path = os.fspath(path)
    tmp = temporary_name(path)
    try:
        with signals_held():
            _write_whole(tmp, write)
            name(tmp, path)
    finally:
        _remove(tmp)                                       # after os.replace: already gone
    return path


def _keep_copy(path, copy):
    """The old bytes of `path` under the name `copy`: a hard link, or a copy where the file
    system has no hard links."""
    try:
        os.link(path, copy)
    except OSError:
        if os.path.isdir(path) or not os.path.isfile(path):
            raise
        import shutil
        shutil.copy2(path, copy)


def replace_together(writers):
    """{path: write(tmp_path)} -> every path replaced, or none of them.

    Each file is written under a temporary name; then, with signals held, each old file is
    kept under a second name, each new one renamed into place, and the old copies removed. A
    failure while renaming puts the old files back (and removes the files that had none)."""
    tmps, done, kept = {}, [], {}
    try:
        with signals_held():
            for path, write in writers.items():
                tmps[path] = temporary_name(path)
                _write_whole(tmps[path], write)
            try:
                for path in writers:
                    if os.path.lexists(path):
                        kept[path] = temporary_name(path)
                        _keep_copy(path, kept[path])
                    os.replace(tmps.pop(path), path)
                    done.append(path)
            except BaseException:
                for path in done:                          # roll back what was renamed
                    if path in kept:
                        os.replace(kept.pop(path), path)
                    else:
                        _remove(path)
                raise
    finally:
        for tmp in list(tmps.values()) + list(kept.values()):
            _remove(tmp)


def remove_stale_temporaries(folder):
    """Remove the temporaries (temporary_name) in `folder` whose writer is gone: a process
    killed outright (SIGKILL, power loss) cannot clean up after itself. Returns their names."""
    stale = []
    for name in os.listdir(folder):
        m = re.fullmatch(r"\.(.+)\.(\d+)-[0-9a-f]{8}\.tmp(\.\w+)?", name)
        if m and not _running(int(m.group(2))):
            _remove(os.path.join(folder, name))
            stale.append(name)
    return stale


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                                # someone else's: leave it
        return True
    return True


# ---------------------------------------------------------------------------- one run, one folder

class FolderInUse(OSError):
    """Another process holds the folder (a run writing there)."""


class owned_folder:
    """`with owned_folder(path, what="--out") as folder:` creates `path` if needed, takes an
    exclusive lock on it (refused at once, FolderInUse, if another process holds it) and
    keeps it for the block. On leaving, the lock is released, and a folder that this call
    created and that is still empty is removed: a command that stops early leaves no trace.

    The lock is `flock` on the folder itself (Linux, macOS): no lock file to clean up, and
    the kernel drops it when the process ends however it ends. Where there is no fcntl
    (Windows) the folder is created but not locked."""

    def __init__(self, path, what="out"):
        self.path, self.what = os.path.abspath(os.fspath(path)), what
        self.created, self.fd = [], None                   # the folders made here, deepest first

    def __enter__(self):
        missing, above = [], self.path
        while not os.path.lexists(above):
            missing.append(above)
            above = os.path.dirname(above)
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
                self.created.insert(0, folder)
            except FileExistsError:                        # made meanwhile by another process
                pass
        try:
            import fcntl
        except ImportError:                                # pragma: no cover - not POSIX
            return self
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.created = []                              # the other run's folder now
            self._release()
            raise FolderInUse(
                f"{self.what}: {self.path!r} is in use by another minswin run (it holds the "
                "folder's lock until it ends); wait for it, or give another --out "
                "folder") from None
        remove_stale_temporaries(self.path)
        return self

    def _release(self):
        if self.fd is not None:
            os.close(self.fd)                              # closing drops the flock
            self.fd = None
        for folder in self.created:
            try:
                os.rmdir(folder)                           # only succeeds when empty
            except OSError:
                break
        self.created = []

    def __exit__(self, *exc):
        self._release()
        return False
