"""Run ``python -m MODULE ARGS...`` in this process, then record its resource usage as JSON.

    python benchmarks/rusage_run.py OUT.json MODULE [ARGS...]

``run.py`` measures every command through this wrapper, so that the peak memory of the main
process and of every worker is read exactly, once, when each ends (nothing is sampled while the
command runs):

* the main process: its ``VmHWM`` (peak resident set size) at the end. Not ``getrusage``'s
  ``ru_maxrss``, which keeps the peak of the image before ``exec`` (the benchmark process that
  started this one);
* each worker (a process forked by the command and ended by ``os._exit``, as every
  ``multiprocessing`` child is: libcst's ``ProcessPoolExecutor`` workers): its ``VmHWM`` just
  before it exits, appended to ``OUT.json.workers`` by a wrapper around ``os._exit`` installed
  here. A forked worker's peak counts the pages it shares with the main process (resident set
  size). Programs run by ``subprocess`` (``git ls-files``) are not workers;
* CPU seconds of the main process and of every child it waited for (``getrusage``).

The exit code is the command's; OUT.json is written by the process that started, never by a
forked child.
"""

from __future__ import annotations

import json
import os
import resource
import runpy
import sys
from collections.abc import Callable
from typing import NoReturn


def peak_rss_kb() -> int:
    """This process's ``VmHWM`` (kB); 0 where ``/proc`` does not give it."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def record_worker_exits(main_pid: int, workers_file: str, out: str) -> None:
    """Make every forked child that ends by ``os._exit`` append ``pid peak_kb`` to
    ``workers_file`` first; the main process ending by ``os._exit`` (``ml_switcheroo.app.exit``
    does, to skip the heap's teardown) writes ``out`` first."""
    real_exit: Callable[[int], NoReturn] = os._exit

    def exit_recording_peak(code: int) -> NoReturn:
        if os.getpid() == main_pid:
            write_record(out, code, workers_file)
        else:
            line = f"{os.getpid()} {peak_rss_kb()}\n".encode("ascii")
            try:
                handle = os.open(workers_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(handle, line)
                os.close(handle)
            except OSError:
                pass
        real_exit(code)

    os._exit = exit_recording_peak


def worker_peaks_kb(workers_file: str) -> list[int]:
    """The peaks the workers recorded, one per worker."""
    try:
        with open(workers_file, encoding="ascii") as handle:
            return [int(line.split()[1]) for line in handle if line.strip()]
    except (OSError, ValueError, IndexError):
        return []


def usage_record(exit_code: int, workers: list[int]) -> dict[str, object]:
    """Peak memory (kB) of the main process and its workers, CPU seconds, the exit code."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "exit": exit_code,
        "main_peak_kb": peak_rss_kb(),
        "worker_peaks_kb": sorted(workers, reverse=True),
        "main_cpu_seconds": round(own.ru_utime + own.ru_stime, 3),
        "children_cpu_seconds": round(children.ru_utime + children.ru_stime, 3),
    }


def write_record(out: str, code: int, workers_file: str) -> None:
    """Write the main process's usage record to ``out``."""
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(usage_record(code, worker_peaks_kb(workers_file)), handle)


def exit_code_of(exc: SystemExit) -> int:
    """The process exit code ``sys.exit(code)`` gives."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main() -> int:
    out, module, *args = sys.argv[1:]
    main_pid = os.getpid()
    workers_file = out + ".workers"
    if os.path.exists(workers_file):
        os.unlink(workers_file)
    record_worker_exits(main_pid, workers_file, out)
    sys.argv = [module, *args]
    sys.path[0] = os.getcwd()  # what ``python -m`` puts first, not this script's folder
    code = 1
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exit_code_of(exc)
    finally:
        if os.getpid() == main_pid:
            write_record(out, code, workers_file)
    return code


if __name__ == "__main__":
    sys.exit(main())
