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
