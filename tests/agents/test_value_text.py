"""The publish diff's values in words (agents.selectors.value_text): rows as one sentence each."""
from agents.selectors import value_text


def test_rows_read_as_one_sentence_each_and_a_hand_edited_row_as_it_is():
    assert value_text("scripted_answers", [
        {"keywords": ["hours", "open"], "answer": "Nine to five.", "play": "https://x.example/a.mp3"},
        "not a row"]) == "“hours”, “open” → Nine to five. (then plays https://x.example/a.mp3)\nnot a row"
    assert value_text("handover_rules", [{"keyword": "sales", "digit": "1", "action": "transfer"},
                                         {"digit": 0, "action": "hangup"}]) == (
        "“sales” or key 1 → transfer\nkey 0 → hangup")
    assert value_text("relay_languages", [{"code": "nl-NL", "voice": "Ruben", "speech_model": "nova-3"},
                                          {"code": "de-DE"}]) == "nl-NL: voice Ruben, speech model nova-3\nde-DE"


def test_plain_values_read_as_words():
    assert value_text("relay_preemptible", True) == "yes"
    assert value_text("variables", ["A", "B"]) == "A, B"
    assert value_text("transport", "media_streams") == "Media Streams (raw audio)"
    assert value_text("scripted_answers", []) == ""
