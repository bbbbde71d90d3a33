import pytest

from voxline.agent_spec import TurnTaking
from voxline.runtime.endpointing import endpoint_ms

TT = TurnTaking(
    end_of_turn_silence_ms=500, min_end_of_turn_silence_ms=250, max_end_of_turn_silence_ms=1200
)


@pytest.mark.parametrize("text", ["What time do you open?", "That's all, thanks.", "I see it now!"])
def test_terminal_punctuation_shortens_the_endpoint(text: str) -> None:
    assert endpoint_ms(text, TT) == 250


@pytest.mark.parametrize("text", ["thank you very much", "no thank you"])
def test_complete_answers_shorten_the_endpoint(text: str) -> None:
    assert endpoint_ms(text, TT) == 250


@pytest.mark.parametrize("text", ["yes", "No.", "Hello?", "Great!", "thank you", "Okay."])
def test_a_word_or_two_waits_the_default_as_it_often_opens_a_sentence(text: str) -> None:
    assert endpoint_ms(text, TT) == 500


@pytest.mark.parametrize(
    "text", ["I'd like to book a table and", "um", "So, uh", "I want the", "Well, but."]
)
def test_trailing_words_lengthen_the_endpoint(text: str) -> None:
    assert endpoint_ms(text, TT) == 1200


@pytest.mark.parametrize("text", ["My number is 555 0123", "five five five", "It's 4"])
def test_numbers_being_dictated_lengthen_the_endpoint(text: str) -> None:
    assert endpoint_ms(text, TT) == 1200


@pytest.mark.parametrize("text", ["I'd like to come", "Tell me about your hours"])
def test_ordinary_unpunctuated_speech_gets_the_default(text: str) -> None:
    assert endpoint_ms(text, TT) == 500


@pytest.mark.parametrize("text", ["Can I bring my daughter to?", "Is that for the?"])
def test_a_question_mark_ends_the_turn_whatever_word_precedes_it(text: str) -> None:
    assert endpoint_ms(text, TT) == 250


def test_a_counted_answer_with_a_period_is_complete() -> None:
    assert endpoint_ms("A table for 2.", TT) == 250


def test_trailing_punctuation_lengthens_the_endpoint() -> None:
    assert endpoint_ms("I was thinking...", TT) == 1200


@pytest.mark.parametrize("text", [None, "", "  "])
def test_unknown_or_empty_transcript_gets_the_default(text: str | None) -> None:
    assert endpoint_ms(text, TT) == 500
