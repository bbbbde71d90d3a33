from voxline.runtime.chunker import MAX_CLAUSE_CHARS, ClauseChunker


def feed(chunker: ClauseChunker, text: str, step: int = 3) -> list[str]:
    clauses: list[str] = []
    for start in range(0, len(text), step):
        clauses.extend(chunker.push(text[start : start + step]))
    rest = chunker.flush()
    if rest is not None:
        clauses.append(rest)
    return clauses


def test_first_clause_is_cut_at_a_comma() -> None:
    clauses = feed(ClauseChunker(), "Sure, our opening hours are nine to five. See you then.")
    assert clauses == ["Sure,", "our opening hours are nine to five.", "See you then."]


def test_first_clause_is_cut_after_five_words_without_punctuation() -> None:
    chunker = ClauseChunker()
    assert chunker.push("I will check the booking") == []
    assert chunker.push(" system") == ["I will check the booking"]


def test_later_clauses_are_whole_sentences_despite_commas() -> None:
    clauses = feed(ClauseChunker(), "Yes. We have apples, pears, and plums. Anything else?")
    assert clauses == ["Yes.", "We have apples, pears, and plums.", "Anything else?"]


def test_decimal_numbers_are_not_split() -> None:
    clauses = feed(ClauseChunker(), "Okay. The rate is 3.5 percent today. Thanks.")
    assert clauses == ["Okay.", "The rate is 3.5 percent today.", "Thanks."]


def test_thousands_separators_are_not_split() -> None:
    assert feed(ClauseChunker(), "It costs 3,500 dollars.") == ["It costs 3,500 dollars."]


def test_abbreviations_do_not_end_a_sentence() -> None:
    clauses = feed(ClauseChunker(), "Right. Dr. Smith sees you at 5 p.m. tomorrow. Bye.")
    assert clauses == ["Right.", "Dr. Smith sees you at 5 p.m. tomorrow.", "Bye."]


def test_initials_do_not_end_a_sentence() -> None:
    clauses = feed(ClauseChunker(), "Fine. J. Smith called. Bye.")
    assert clauses == ["Fine.", "J. Smith called.", "Bye."]


def test_a_sentence_end_waits_for_the_following_space() -> None:
    chunker = ClauseChunker()
    assert chunker.push("Hello.") == []
    assert chunker.push(" Next") == ["Hello."]


def test_punctuation_only_fragments_join_the_next_clause() -> None:
    clauses = feed(ClauseChunker(), "... Well, fine.")
    assert clauses == ["... Well,", "fine."]


def test_flush_returns_none_when_nothing_speakable_remains() -> None:
    chunker = ClauseChunker()
    assert chunker.push("Done. ") == ["Done."]
    assert chunker.flush() is None


def test_overlong_sentences_are_cut_at_a_space() -> None:
    text = "Fine. " + "word " * 100
    clauses = feed(ClauseChunker(), text, step=50)
    assert clauses[0] == "Fine."
    assert all(len(clause) <= MAX_CLAUSE_CHARS for clause in clauses)
    assert " ".join(clauses[1:]) == text[6:].strip()
