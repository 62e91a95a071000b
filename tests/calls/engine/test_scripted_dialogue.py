"""The scripted agent never acts on a spoken guess: it confirms or offers the keys; keys and sure phrases act."""
from calls.providers.scripted import Dialogue

RULES = [{"keyword": "sales", "digit": "1", "action": "transfer_to_sales"},
         {"keyword": "support", "digit": "2", "action": "transfer_to_support"},
         {"keyword": "goodbye", "digit": "9", "action": "hangup"}]
ANSWERS = [{"keywords": ["hours", "open"], "answer": "We are open nine to five."}]


def dialogue():
    return Dialogue(RULES, ANSWERS)


def test_a_keyword_heard_once_is_confirmed_not_acted_on():
    d = dialogue()
    step = d.heard("i want to talk to fail", keywords=("sales",))
    assert step.rule is None and step.expect == "answer"
    assert step.say == "Sales, is that right? Say yes or press 1."
    assert d.heard("yes", answer="yes").rule["action"] == "transfer_to_sales"


def test_a_long_phrase_both_recognisers_agree_on_acts_at_once():
    step = dialogue().heard("i want to talk to sales", keywords=("sales",))
    assert step.rule["action"] == "transfer_to_sales"


def test_no_to_a_confirmation_offers_the_keys_and_a_key_acts():
    d = dialogue()
    d.heard("support", keywords=())
    step = d.heard("no", answer="no")
    assert step.rule is None and step.expect == "open"
    assert "Say sales or press 1." in step.say and "Say support or press 2." in step.say
    assert d.pressed("1").rule["action"] == "transfer_to_sales"


def test_an_answer_not_understood_offers_the_keys():
    d = dialogue()
    d.heard("sales", keywords=())
    keys = d.heard("i want to talk to sales", answer="")
    assert keys.rule is None and "press 1" in keys.say and keys.expect == "open"


def test_after_the_keys_were_offered_a_spoken_guess_gets_the_keys_again():
    d = dialogue()
    d.heard("i don't", keywords=())
    step = d.heard("support", keywords=("support",))
    assert step.rule is None and step.expect == "open" and "Please use the keys." in step.say


def test_nothing_recognised_offers_the_keys_and_two_rules_heard_too():
    assert "Say sales or press 1." in dialogue().heard("i don't", keywords=()).say
    step = dialogue().heard("sales or support", keywords=())
    assert step.rule is None and "press 2" in step.say


def test_the_key_of_a_rule_other_than_the_one_confirmed_acts_on_that_rule():
    d = dialogue()
    d.heard("sales", keywords=())
    assert d.pressed("2").rule["action"] == "transfer_to_support"
    assert d.confirming is None
    assert d.pressed("7") is None


def test_a_question_from_the_table_is_answered_by_its_words():
    step = dialogue().heard("what are your opening hours", keywords=())
    assert step.say == "We are open nine to five." and step.rule is None
