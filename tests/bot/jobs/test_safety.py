"""The prompt filter: evasions are caught, innocent prompts containing blocked letters pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import SafetyConfig
from bot.jobs.safety import REFUSAL, PromptFilter, normalise

# A realistic list for a family-friendly server.
BLOCKED = [
    "nude",
    "naked",
    "nsfw",
    "porn",
    "sex",
    "cunt",
    "ass",
    "cock",
    "rapist",
    "penis",
    "boobs",
    "hentai",
    "topless",
    "gore",
    "child porn",
    "without clothes",
]


@pytest.fixture(scope="module")
def prompt_filter() -> PromptFilter:
    return PromptFilter(BLOCKED)


EVASIONS = [
    "a NUDE woman on a beach",  # case
    "Nude portrait",
    "nüde statue",  # accent
    "ñudé figure",  # accents on every letter
    "ｎｕｄｅ",  # fullwidth
    "𝐧𝐮𝐝𝐞 painting",  # mathematical bold
    "ⓝⓤⓓⓔ",  # circled letters
    "nаked man",  # Cyrillic а
    "nаkеd",  # Cyrillic а and е
    "ΡΟRΝ",  # Greek capitals Rho, Omicron, Nu
    "nυde",  # Greek upsilon
    "nu\u200bde",  # zero-width space
    "na\u200dked",  # zero-width joiner
    "p\u00adorn",  # soft hyphen
    "n u d e",  # spaced out
    "n.u.d.e",
    "n-a-k-e-d",
    "a picture of n_u_d_e people",
    "nud3",  # leetspeak
    "n4k3d",
    "p0rn",
    "s3x",
    "$ex",
    "@ss",
    "a$$",
    "c0ck",
    "pen1s",
    "b00bs",
    "h3nt@i",
    "t0pl3ss",
    "nuuuude",  # repeated letters
    "seeexxx",
    "cvnt",
    "the rapist",  # a whole word after all
    "child porn",  # phrase
    "child   porn",
    "childporn",
    "without-clothes",
    "nudes",  # plural
    "NSFW!!",
]

INNOCENT = [
    "Scunthorpe at dawn",
    "a class of students",
    "the therapist's office",
    "an assassin in the shadows",
    "a cocktail on a bar",
    "rolling hills of Sussex",
    "Essex marshes",
    "Middlesex county map",
    "a sextant on a ship's table",
    "a bass guitar on stage",
    "a narrow passage",
    "a peacock in a garden",
    "a cockpit of an old plane",
    "a shuttlecock mid-air",
    "butterscotch pudding",
    "an embassy building",
    "compassion and kindness",
    "a classic car",
    "assume nothing",
    "an assistant robot",
    "a pen is on the table",  # "pen is" must not become "penis"
    "a nudibranch under water",
    "a gorgeous sunset",
    "Pennsylvania farmland",
    "U.S.S. Enterprise in orbit",
    "grapes on a vine",
    "an analysis chart",
    "a dress with sequins",
    "a basset hound",
    "a hancock tower at night",
    "Shakespeare's sonnet",
    "cocoa beans",
    "a red fox at dusk",
    "naive art of a village",
    "a goose by the lake",
]


@pytest.mark.parametrize("prompt", EVASIONS)
def test_evasions_are_refused(prompt_filter: PromptFilter, prompt: str) -> None:
    assert prompt_filter.check(prompt) == REFUSAL


@pytest.mark.parametrize("prompt", INNOCENT)
def test_innocent_prompts_pass(prompt_filter: PromptFilter, prompt: str) -> None:
    assert prompt_filter.check(prompt) is None


def test_lists_are_big_enough() -> None:
    assert len(EVASIONS) >= 30 and len(INNOCENT) >= 30


def test_refusal_never_names_the_word(prompt_filter: PromptFilter) -> None:
    message = prompt_filter.check("hentai")
    assert message is not None
    assert all(word not in message.lower() for word in BLOCKED)


def test_normalise_folds_lookalikes_and_invisible_characters() -> None:
    assert normalise("Ｎ\u200bаÏvЕ") == "naive"


def test_empty_filter_allows_everything() -> None:
    assert PromptFilter().check("nude") is None
    assert PromptFilter(["  ", "#"]).check("anything at all") is None


def test_words_file_adds_words_and_skips_comments(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# extra words for this server\nzombie  # no horror here\n\nblood moon\n")
    config = SafetyConfig(blocked_words=["gore"], words_file="words.txt")
    prompt_filter = PromptFilter.from_config(config, base_dir=tmp_path)
    assert prompt_filter.check("a z0mbie walking") == REFUSAL
    assert prompt_filter.check("a blood moon rising") == REFUSAL
    assert prompt_filter.check("gore") == REFUSAL
    # The comment text is not a blocked word, and single words of a phrase are fine.
    assert prompt_filter.check("no horror here, a moon rising") is None
    assert prompt_filter.check("blood orange") is None


def test_blocked_entries_are_normalised_too() -> None:
    # An admin may write the word with capitals or accents.
    assert PromptFilter(["Nüde"]).check("nude") == REFUSAL
