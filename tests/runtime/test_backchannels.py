import pytest

from voxline.runtime.backchannels import Backchannels, Said


@pytest.mark.parametrize(
    "text",
    ["Yeah.", "okay okay", "Mm-hmm.", "uh huh", "Right, right.", "I see.", "Oh, okay.", "in"],
)
def test_english_acknowledgements_are_backchannels(text: str) -> None:
    assert Backchannels("en").classify(text) is Said.BACKCHANNEL


@pytest.mark.parametrize(
    "text",
    [
        "Sorry, can I ask something else?",
        "No.",
        "Wait",
        "Yeah, but what about Tuesday?",
        "I need to reschedule my appointment",
    ],
)
def test_a_cue_or_three_other_words_are_words(text: str) -> None:
    assert Backchannels("en").classify(text) is Said.WORDS


@pytest.mark.parametrize("text", ["your your your", "Very", "in a number in", "and then one"])
def test_a_word_or_two_without_a_cue_is_unsure(text: str) -> None:
    assert Backchannels("en").classify(text) is Said.UNSURE


@pytest.mark.parametrize("text", ["MmMm", "NMR", "Uh-uh.", "mhm", "in MMM.", "MMs and m", "mamam"])
def test_what_a_recognizer_writes_for_a_hum_is_a_backchannel(text: str) -> None:
    assert Backchannels("en").classify(text) is Said.BACKCHANNEL


def test_no_words_is_nothing() -> None:
    assert Backchannels("en").classify(" ... ") is Said.NOTHING


def test_the_agents_language_picks_the_list() -> None:
    assert Backchannels("es-ES").classify("Vale, claro.") is Said.BACKCHANNEL
    assert Backchannels("de").classify("Genau.") is Said.BACKCHANNEL
    assert Backchannels("de").classify("Warte, was?") is Said.WORDS
    assert Backchannels("en").classify("Genau.") is Said.UNSURE


def test_an_unknown_language_falls_back_to_english() -> None:
    assert Backchannels("xx").classify("Yeah.") is Said.BACKCHANNEL


def test_an_agent_may_add_its_own_phrases() -> None:
    assert Backchannels("en", ["bien sûr"]).classify("Bien sûr!") is Said.BACKCHANNEL
