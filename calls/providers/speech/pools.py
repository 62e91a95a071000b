"""One budget of speech processes per worker process, shared by the two spawned pools.

The offline recogniser (pocketsphinx, `offline.recognition_pool`) and the turn model (smart-turn v3.2,
`turn._Worker`, one per event loop) each run in spawned processes of their own: nothing in them can hold the event loop's
GIL. Both pools are sized here, together, from one setting:

    SPEECH_PROCESSES   processes per worker for both pools (default: cores + 1, at least 2)
                       the turn model gets 1 (it answers a pause in ~0.1 s of CPU and is idle in between),
                       the recogniser the rest (a turn's decode is 0.1-0.5 s of CPU; two turns at once need two)

`OFFLINE_STT_PROCESSES` (the older setting) still sets the recogniser's share when given; the budget is then
that plus the turn model's one. On the 2-core reference machine: 3 processes per worker (1 + 2), about 60 MB each
(the decoder's model, or onnxruntime and the 8 MB turn model). Every pool process runs below the worker's CPU
priority, so on a busy machine the calls' audio frames go first and a decode waits; the turn model's worker runs
in the idle scheduling class (`lower_priority(idle=True)`): when the cores are busy, the silence rule decides.

N web workers on a machine spawn N budgets: set `SPEECH_PROCESSES` to about (cores + 1) / N with several workers.
"""
from __future__ import annotations

import multiprocessing
import os

TURN_MODEL_PROCESSES = 1

# The numerical libraries' own thread pools (numpy's OpenBLAS starts one thread per core when it is imported).
ONE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def spawn_context():
    """The context the speech pools spawn their processes with: each holds its numerical libraries to one thread.

    A pool process does one question at a time on small matrices; without this, numpy's OpenBLAS started a
    thread per core at import, before the process lowered its priority (Linux's nice is per thread), and the
    turn model's worker took 1.3 cores, half of it at the calls' own priority (seen with `top -H` under
    `bench.media_streams_served`). The spawned process inherits this process's environment, so the settings are
    put there (an operator's own value wins)."""
    for name in ONE_THREAD:
        os.environ.setdefault(name, "1")
    return multiprocessing.get_context("spawn")


def lower_priority(niceness: int, *, idle: bool = False) -> None:
    """Lower every thread of this (pool) process by `niceness`: threads started before the call (a library's) as
    well as the calling one; threads started later inherit it. No-op where not permitted or not Linux.

    `idle`: also Linux's idle scheduling class (`SCHED_IDLE`), for a pool whose work has a fallback (the turn
    model: the silence rule). A nice value only lowers a share: under load the kernel still let the turn model's
    worker finish its time slice while the calls' event loop waited to run (cascaded+turn at 200 calls, p99 52-72
    ms with nice 10 alone, 24-26 ms in the idle class; `bench.media_streams_served`). In the idle class a call's
    frame always runs first, and the model takes only the CPU the calls leave."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
        except (AttributeError, OSError):
            pass
        if idle:
            try:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            except (AttributeError, OSError):
                pass


def _int_setting(name: str) -> int:
    try:
        return max(0, int(os.environ.get(name) or 0))
    except ValueError:
        return 0


def budget() -> int:
    """Speech processes this worker may spawn, both pools together."""
    explicit = _int_setting("SPEECH_PROCESSES")
    if explicit:
        return max(2, explicit)
    legacy = _int_setting("OFFLINE_STT_PROCESSES")
    if legacy:
        return legacy + TURN_MODEL_PROCESSES
    return max(2, (os.cpu_count() or 1) + 1)


def turn_model_processes() -> int:
    return TURN_MODEL_PROCESSES


def recognition_processes() -> int:
    return max(1, budget() - turn_model_processes())
