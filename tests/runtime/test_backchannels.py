import pytest

from voxline.runtime.backchannels import Backchannels, Said


@pytest.mark.parametrize(
    "text",
    ["Yeah.", "okay okay", "Mm-hmm.", "uh huh", "Right, right.", "I see.", "Oh, okay.", "in"],
)
def test_english_acknowledgements_are_backchannels(text: str) -> None:
    assert Backchannels("en").classify(text) is Said.BACKCHANNEL


@pytest.mark.parametrize(
    "text", ["Sorry, can I ask something else?", "No.", "Wait", "Yeah, but what about Tuesday?"]
)
def test_anything_more_is_words(text: str) -> None:
    assert Backchannels("en").classify(text) is Said.WORDS


def test_no_words_is_nothing() -> None:
    assert Backchannels("en").classify(" ... ") is Said.NOTHING


def test_the_agents_language_picks_the_list() -> None:
    assert Backchannels("es-ES").classify("Vale, claro.") is Said.BACKCHANNEL
    assert Backchannels("de").classify("Genau.") is Said.BACKCHANNEL
    assert Backchannels("en").classify("Genau.") is Said.WORDS


def test_an_unknown_language_falls_back_to_english() -> None:
    assert Backchannels("xx").classify("Yeah.") is Said.BACKCHANNEL


def test_an_agent_may_add_its_own_phrases() -> None:
    assert Backchannels("en", ["bien sûr"]).classify("Bien sûr!") is Said.BACKCHANNEL
