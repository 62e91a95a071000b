"""The recogniser's and the turn model's process pools share one per-worker budget (`SPEECH_PROCESSES`)."""
import pytest

from calls.providers.speech import offline, pools


@pytest.fixture
def env(monkeypatch):
    for name in ("SPEECH_PROCESSES", "OFFLINE_STT_PROCESSES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_budget_is_split_one_for_the_turn_model_the_rest_for_the_recogniser(env):
    env.setenv("SPEECH_PROCESSES", "5")
    assert pools.budget() == 5
    assert pools.turn_model_processes() == 1 and pools.recognition_processes() == 4
    assert offline.pool_size() == 4


def test_the_default_budget_follows_the_cores(env):
    env.setattr(pools.os, "cpu_count", lambda: 2)
    assert pools.budget() == 3 and offline.pool_size() == 2


def test_the_budget_never_leaves_the_recogniser_without_a_process(env):
    env.setenv("SPEECH_PROCESSES", "1")
    assert pools.recognition_processes() == 1 and pools.turn_model_processes() == 1


def test_the_older_recogniser_setting_still_sizes_its_share(env):
    env.setenv("OFFLINE_STT_PROCESSES", "3")
    assert offline.pool_size() == 3 and pools.budget() == 4


def test_a_bad_value_falls_back_to_the_default(env):
    env.setattr(pools.os, "cpu_count", lambda: 2)
    env.setenv("SPEECH_PROCESSES", "many")
    assert pools.budget() == 3


def _probe() -> tuple[str | None, list[int]]:
    """In a pool process: its BLAS thread setting and the nice value of each of its threads."""
    import os

    import numpy  # noqa: F401 - its thread pool, if any, is started by now

    tids = [int(t) for t in os.listdir("/proc/self/task")]
    return os.environ.get("OPENBLAS_NUM_THREADS"), [os.getpriority(os.PRIO_PROCESS, t) for t in tids]


def test_a_pool_process_holds_numpy_to_one_thread_and_runs_every_thread_below_the_calls(env):
    """Linux's nice is per thread: a library's threads started before the pool process lowered its main thread
    used to stay at the calls' priority (the turn model's worker took 1.3 cores under load)."""
    from concurrent.futures import ProcessPoolExecutor

    for name in pools.ONE_THREAD:
        env.delenv(name, raising=False)
    with ProcessPoolExecutor(max_workers=1, mp_context=pools.spawn_context(), initializer=pools.lower_priority,
                             initargs=(10,)) as pool:
        blas_threads, nices = pool.submit(_probe).result(timeout=120)

    import os

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert blas_threads == "1"
    assert nices and set(nices) == {min(19, mine + 10)}


def _policies() -> list[int]:
    """In a pool process: the scheduling policy of each of its threads."""
    import os

    import numpy  # noqa: F401

    return [os.sched_getscheduler(int(t)) for t in os.listdir("/proc/self/task")]


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_IDLE"), reason="the idle scheduling class is Linux's")
def test_the_turn_models_worker_runs_every_thread_in_the_idle_class_the_recognisers_does_not(env):
    """The turn model has a fallback (the silence rule), so its worker takes only the CPU the calls leave; the
    recogniser has none, so it keeps a (lowered) share."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    from calls.providers.speech import turn

    with ProcessPoolExecutor(max_workers=1, mp_context=pools.spawn_context(), initializer=turn._worker_init,
                             initargs=(str(turn.BUNDLED_SMART_TURN),)) as pool:
        model_worker = pool.submit(_policies).result(timeout=120)
    with ProcessPoolExecutor(max_workers=1, mp_context=pools.spawn_context(),
                             initializer=offline._pool_process_start) as pool:
        recogniser = pool.submit(_policies).result(timeout=120)
    assert model_worker and set(model_worker) == {os.SCHED_IDLE}
    assert recogniser and os.SCHED_IDLE not in recogniser
