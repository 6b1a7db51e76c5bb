"""What the machine must give a run, checked before its first step.

* :func:`ensure_writable_caches`: the per-user folders that libraries write into while
  a run writes its outputs (ArviZ's cache: ``platformdirs.user_cache_dir``, i.e.
  ``$XDG_CACHE_HOME`` or ``~/.cache``; Matplotlib's ``$MPLCONFIGDIR`` or
  ``~/.config/matplotlib``) are writable, or are pointed (through those environment
  variables) at a private folder in the temporary folder. A read-only or missing
  ``$HOME`` then costs nothing; only when no temporary folder is writable either is
  the run refused, before any work.
* :func:`check_free_space`: a folder has room for an estimated output size.
* :func:`available_memory`: the memory a run may still allocate (for the size checks
  of :mod:`lightning_ex2.validation`).
* :func:`choose_threads`: the CPU threads one process should use.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lightning_ex2.errors import UserError

#: environment variable -> what it locates (libraries that write per-user files)
CACHE_VARIABLES = {
    "XDG_CACHE_HOME": "ArviZ's (platformdirs') user cache",
    "MPLCONFIGDIR": "Matplotlib's config and cache",
}


#: rank variables of launchers and schedulers, which Lightning reads as integers (some
#: when it is imported)
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def rank_variable_problem(environ: dict[str, str] | None = None) -> str | None:
    """A one-line description of the first rank variable that is not an integer >= 0
    (``None``: all fine or unset).

    Example:
        >>> rank_variable_problem({"SLURM_PROCID": "x"})
        "SLURM_PROCID='x' is not a process rank (an integer >= 0); unset it or fix the job script that sets it"
    """
    env = os.environ if environ is None else environ
    for name in RANK_VARIABLES:
        value = env.get(name)
        if value is not None and not value.strip().isdigit():
            return (
                f"{name}={value!r} is not a process rank (an integer >= 0); unset it or fix "
                "the job script that sets it"
            )
    return None


def exit_on_bad_rank_variables() -> None:
    """The command's check, run before Lightning is imported (Lightning's import fails on
    such a variable with a traceback): one line on stderr and exit status 2."""
    problem = rank_variable_problem()
    if problem is not None:
        import sys

        print(f"lightning-ex2: error: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(2)


def _home() -> Path | None:
    """The home folder as libraries find it (``None``: none, e.g. ``$HOME`` unset and no
    password entry: ``~`` would be a relative path)."""
    home = os.path.expanduser("~")
    return Path(home) if os.path.isabs(home) else None


def _default(variable: str) -> Path | None:
    """Where the library writes without ``variable`` set."""
    home = _home()
    if home is None:
        return None
    return home / (".cache" if variable == "XDG_CACHE_HOME" else ".config/matplotlib")


def writable(folder: Path) -> bool:
    """Whether ``folder`` exists or can be created, and a file can be created in it
    (checked by doing it: permissions, read-only mounts, a file in the way, root)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".lightning-ex2-probe-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError:
        return False
    return True


def ensure_writable_caches() -> dict[str, str]:
    """Point every variable of :data:`CACHE_VARIABLES` whose folder (set or default) is
    not writable at a private temporary folder; returns what was set.

    Raises:
        UserError: no temporary folder is writable either (naming the variables to set).
    """
    changed: dict[str, str] = {}
    private: Path | None = None
    for variable in CACHE_VARIABLES:
        value = os.environ.get(variable, "").strip()
        folder = Path(value) if value and os.path.isabs(value) else _default(variable)
        if folder is not None and writable(folder):
            continue
        if private is None:
            try:
                private = Path(tempfile.mkdtemp(prefix="lightning-ex2-cache-"))
            except OSError as err:
                raise UserError(
                    f"no writable folder for {', '.join(CACHE_VARIABLES)} (home "
                    f"{_home() or 'unset'}, temporary folder {tempfile.gettempdir()}: "
                    f"{err.strerror or err}); set them, or TMPDIR, to a writable folder"
                ) from err
        target = private / variable.lower()
        target.mkdir(exist_ok=True)
        os.environ[variable] = str(target)
        changed[variable] = str(target)
    return changed


def check_free_space(folder: Path, needed: int, what: str, option: str) -> None:
    """Refuse (:class:`UserError`) when the file system of ``folder`` (or of its nearest
    existing parent) has less than ``needed`` bytes free."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # unknown: the write itself reports a full disk in one line
    if needed > free:
        raise UserError(
            f"{option} {folder}: {what} needs about {needed / 2**30:.3g} GiB, the disk "
            f"there has {free / 2**30:.3g} GiB free; free space, write elsewhere, or keep "
            "fewer draws (--n_steps, --thin, data.n_chains)"
        )


def available_memory() -> int | None:
    """Bytes of memory this process may still allocate on the CPU (``MemAvailable``,
    and the cgroup's limit less its usage when lower); ``None`` when unknown."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            cap = Path(limit).read_text().strip()
            if cap.isdigit() and int(cap) < 2**60:
                found.append(int(cap) - int(Path(usage).read_text().strip()))
                break
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def choose_threads(
    requested: int | None = None,
    processes: int = 1,
    environ: dict[str, str] | None = None,
    affinity: int | None = None,
) -> int:
    """The CPU threads one process should use.

    ``requested`` (``--threads``) if given; else ``OMP_NUM_THREADS`` if set (the
    user's or the launcher's choice); else the CPUs this process may run on (its
    affinity mask, e.g. a container's or scheduler's cpuset), at most
    ``SLURM_CPUS_PER_TASK``, divided among ``processes`` CPU processes (DDP on CPU).

    Example:
        >>> choose_threads(environ={"SLURM_CPUS_PER_TASK": "4"}, affinity=64)
        4
        >>> choose_threads(environ={}, affinity=8, processes=2)
        4
        >>> choose_threads(3, environ={"OMP_NUM_THREADS": "1"}, affinity=8)
        3
    """
    env = os.environ if environ is None else environ
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be an int >= 1, got {requested}")
        return requested
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp:
        if not omp.isdigit() or int(omp) < 1:
            raise ValueError(f"OMP_NUM_THREADS must be an int >= 1, got {omp!r}")
        return int(omp)
    if affinity is None:
        try:
            affinity = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not Linux
            affinity = os.cpu_count() or 1
    n = affinity
    slurm = env.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) > 0:
        n = min(n, int(slurm))
    return max(1, n // max(1, processes))


__all__ = [
    "CACHE_VARIABLES",
    "available_memory",
    "check_free_space",
    "choose_threads",
    "ensure_writable_caches",
    "exit_on_bad_rank_variables",
    "rank_variable_problem",
    "writable",
]
