"""One process at a time: a lock file that others wait on (downloads, conversions).

Two notebooks, two ``samkit download`` commands or two workers of a run may reach for the
same file at once; the second should wait for the first and then reuse its work, not
repeat it beside it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["locked"]


@contextlib.contextmanager
def locked(
    path: str | os.PathLike[str], on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the lock file ``path``; while another process holds it, wait.

    The holder removes the lock file before it lets go (on POSIX), so nothing is left
    behind; a waiter that then holds a removed file tries again.

    Args:
        path: The lock file (created if missing; its folder must exist).
        on_wait: Called once, before waiting, when another process holds the lock.

    Raises:
        OSError: The lock file cannot be created.

    Example:
        ```pycon
        >>> import tempfile
        >>> from pathlib import Path
        >>> from samkit.locks import locked
        >>> lock = Path(tempfile.mkdtemp()) / "job.lock"
        >>> with locked(lock):
        ...     lock.exists()
        True
        >>> lock.exists()
        False

        ```
    """
    lock_path = Path(path)
    waited = False
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if not _lock_fd(fd, blocking=False):
                if on_wait is not None and not waited:
                    on_wait()
                waited = True
                _lock_fd(fd, blocking=True)
            if sys.platform == "win32" or _same_file(fd, lock_path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        if sys.platform != "win32":
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()
        os.close(fd)


def _lock_fd(fd: int, *, blocking: bool) -> bool:
    """Take an exclusive lock on an open file; ``False`` when another process holds it.

    POSIX uses ``flock``, Windows ``msvcrt.locking``. Where the platform or file system
    has no locks (``ENOLCK``, e.g. some network file systems), no lock is taken and
    ``True`` is returned: the hash of the bytes on disk still guards the result.
    """
    if sys.platform == "win32":
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not blocking:
                    return False
                time.sleep(0.2)
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            return True
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed, not replaced)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
