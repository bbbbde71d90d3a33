from voxline.runtime.heard import ClauseSpan, split_heard

SPANS = [
    ClauseSpan("Sure,", 0, 1000),
    ClauseSpan("our opening hours are nine to five.", 1000, 8000),
    ClauseSpan("Anything else?", 8000, 10000),
]


def test_nothing_heard() -> None:
    assert split_heard(SPANS, 0) == ("", " ".join(s.text for s in SPANS))


def test_everything_heard() -> None:
    assert split_heard(SPANS, 10000) == (" ".join(s.text for s in SPANS), "")


def test_whole_clauses_heard_up_to_a_clause_boundary() -> None:
    heard, unheard = split_heard(SPANS, 1000)
    assert heard == "Sure,"
    assert unheard.startswith("our opening")


def test_words_within_a_clause_are_heard_in_proportion_to_their_length() -> None:
    # "our opening hours are" is 21 of the clause's 35 characters: 60% of its 7000 samples.
    heard, unheard = split_heard(SPANS, 1000 + 4200)
    assert heard == "Sure, our opening hours are"
    assert unheard == "nine to five. Anything else?"


def test_a_word_partly_played_is_not_heard() -> None:
    heard, _ = split_heard(SPANS, 1000 + 4100)
    assert heard == "Sure, our opening hours"


def test_an_empty_clause_at_the_heard_position_counts_as_heard() -> None:
    spans = [ClauseSpan("One.", 0, 100), ClauseSpan("Two.", 100, 100)]
    assert split_heard(spans, 100) == ("One. Two.", "")
