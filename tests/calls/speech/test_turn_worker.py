"""The turn model's worker process, asked by the event loop over a socket pair (`speech/turn.py`, `_Worker`):
no thread of this process takes part, an answer to a question given up on never reaches the next question, a
worker that died is replaced."""
import asyncio
import threading

import numpy as np
import pytest

from calls.providers.speech import turn
from tests.conditions import until

pytestmark = pytest.mark.skipif(turn.TurnModel.MODE != "process", reason="the process worker is the default")


def _audio(seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, 3000, 8000 * 3)).astype(np.int16)


def test_questions_are_answered_by_the_worker_with_no_thread_of_this_process():
    model = turn.TurnModel(turn.BUNDLED_SMART_TURN)

    async def scenario():
        threads = threading.active_count()
        first = await model.probability(np.zeros(8000, dtype=np.int16))
        second = await model.probability(_audio(1))
        assert threading.active_count() == threads  # no executor manager or queue feeder thread
        return first, second

    first, second = asyncio.run(scenario())
    local = turn.TurnModel(turn.BUNDLED_SMART_TURN)
    assert first == pytest.approx(local.predict(np.zeros(8000, dtype=np.int16)), abs=1e-6)
    assert second == pytest.approx(local.predict(_audio(1)), abs=1e-6)
    assert model._session is None  # loaded in the worker, not here


def test_the_answer_to_a_question_given_up_on_is_dropped_and_the_next_gets_its_own():
    model = turn.TurnModel(turn.BUNDLED_SMART_TURN)
    local = turn.TurnModel(turn.BUNDLED_SMART_TURN)
    given_up, asked = np.zeros(16000, dtype=np.int16), _audio(2)
    assert abs(local.predict(given_up) - local.predict(asked)) > 1e-3  # the two answers can be told apart

    async def scenario():
        await model.probability(np.zeros(800, dtype=np.int16))  # the worker is up
        worker = turn._worker_for(model.path)
        sent = worker._next_id
        first = asyncio.create_task(model.probability(given_up))
        await until(lambda: worker._next_id == sent + 1, what="the first question on the wire")
        first.cancel()  # its call ended while the model thought
        with pytest.raises(asyncio.CancelledError):
            await first
        return await model.probability(asked)

    assert asyncio.run(scenario()) == pytest.approx(local.predict(asked), abs=1e-6)


def test_a_worker_that_died_fails_that_pause_and_is_replaced_for_the_next():
    model = turn.TurnModel(turn.BUNDLED_SMART_TURN)

    async def scenario():
        await model.probability(np.zeros(800, dtype=np.int16))
        worker = turn._worker_for(model.path)
        worker.process.kill()
        await asyncio.to_thread(worker.process.join, 30)
        with pytest.raises(turn.TurnWorkerFailed):
            await model.probability(np.zeros(800, dtype=np.int16))  # the silence rule decides this one
        p = await model.probability(np.zeros(800, dtype=np.int16))
        assert turn._worker_for(model.path) is not worker
        return p

    assert 0.0 <= asyncio.run(scenario()) <= 1.0
