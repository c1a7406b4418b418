"""The prompt filter: blocked words and phrases, matched after undoing the usual evasions.

A prompt is normalised before matching: accents and compatibility forms are folded
(NFKD: fullwidth and "fancy" letters become plain ones), case is folded, Cyrillic and
Greek look-alikes become Latin letters, and invisible characters are dropped. Each
blocked word becomes a regex in which every letter also accepts its leetspeak stand-ins
(`3` for `e`, `@` for `a`...) and repeats (`nuuude`). Words must stand alone, so
"Scunthorpe", "class" and "therapist" pass while "cunt", "ass" and "the rapist" do not.
Letters spelled out one by one (`n u d e`, `n.u.d.e`) are joined up and checked too.

The refusal never repeats the blocked word back: that would teach the evasion.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from bot.config import SafetyConfig

REFUSAL = "That prompt isn't allowed here."

# Latin letters that Cyrillic and Greek letters are made to look like. Capitals are
# mapped before case folding because some fold into a letter that looks different
# (Greek capital Nu "Ν" looks like N, its small form "ν" like v).
_LOOKALIKES = {
    # Cyrillic
    "А": "a", "В": "b", "С": "c", "Е": "e", "Н": "h", "І": "i", "Ј": "j", "К": "k",
    "М": "m", "О": "o", "Р": "p", "Ѕ": "s", "Т": "t", "Х": "x", "У": "y", "Ү": "y",
    "а": "a", "с": "c", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "о": "o",
    "р": "p", "ѕ": "s", "х": "x", "у": "y", "ү": "y", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ё": "e", "ї": "i", "п": "n", "и": "u", "т": "t", "м": "m",
    # Greek
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m",
    "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ς": "s", "ϲ": "c",
    # Latin oddities NFKD leaves alone
    "ı": "i", "ɑ": "a", "ɡ": "g", "ø": "o", "đ": "d", "ł": "l", "ß": "ss",
}  # fmt: skip
_LOOKALIKE_TABLE = str.maketrans(_LOOKALIKES)

# What each letter of a blocked word also matches in a prompt (leetspeak).
_STAND_INS = {
    "a": "a4@",
    "b": "b8",
    "e": "e3€",
    "g": "g96",
    "i": "i1!|l",
    "l": "l1|i",
    "o": "o0",
    "s": "s5$",
    "t": "t7+",
    "u": "uv",
    "z": "z2",
}
_LEET_SYMBOLS = "@$!|+€"
# A glyph that can be part of a word: a letter or digit, or a leetspeak symbol.
_GLYPH = rf"(?:[^\W_]|[{re.escape(_LEET_SYMBOLS)}])"
# Letters spelled out one at a time with separators: `n u d e`, `n.u.d.e`, `n-u-d-e`.
_SPELLED_OUT = re.compile(
    rf"(?<![^\W_]){_GLYPH}(?:[\s.\-_*~/\\,:;'\"`]{{1,3}}{_GLYPH}){{2,}}(?![^\W_])"
)
_SEPARATORS = re.compile(r"[\s.\-_*~/\\,:;'\"`]+")


def normalise(text: str) -> str:
    """Fold a prompt to plain lower-case Latin letters where it only looks different."""
    if text.isascii():  # most prompts: nothing to fold but case
        return text.lower()
    text = text.translate(_LOOKALIKE_TABLE)
    text = unicodedata.normalize("NFKD", text)
    # Combining marks (accents) and format characters (zero-width spaces and joiners,
    # soft hyphens, direction marks) are invisible in the prompt a person reads.
    text = text.translate(_INVISIBLE)
    return text.casefold().translate(_LOOKALIKE_TABLE)


class _InvisibleTable(dict[int, int | None]):
    """A `str.translate` table that deletes combining marks and format characters,
    filled in as characters are met (a full table would cover all of Unicode).
    """

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.category(chr(code)) in ("Mn", "Cf") else code
        if len(self) < _INVISIBLE_CACHE_SIZE:
            self[code] = value
        return value


_INVISIBLE_CACHE_SIZE = 50_000
_INVISIBLE = _InvisibleTable()


def _word_tokens(word: str) -> list[str]:
    """Regex pieces for one word: stand-ins for each letter, repeats allowed."""
    tokens = []
    for match in re.finditer(r"(.)\1*", word):
        letter, run = match[1], len(match[0])
        glyphs = _STAND_INS.get(letter, letter)
        glyph_class = f"[{re.escape(glyphs)}]" if len(glyphs) > 1 else re.escape(glyphs)
        tokens.append(f"{glyph_class}{{{run},}}" if run > 1 else f"{glyph_class}+")
    return tokens


_BETWEEN_WORDS = r"[\W_]*"  # words of a phrase may be spaced, dashed or run together


def _entry_tokens(entry: str) -> list[str]:
    tokens: list[str] = []
    for word in re.findall(r"[^\W_]+", normalise(entry)):
        if tokens:
            tokens.append(_BETWEEN_WORDS)
        tokens += _word_tokens(word)
    return tokens


def _trie_pattern(entries: list[list[str]]) -> str:
    """One regex for all entries, sharing common beginnings.

    A flat alternation would try every entry at every word start; as a trie the
    regex engine follows one branch per letter, which keeps `check` fast with long
    lists and long prompts.
    """
    trie: dict[str, dict] = {}
    for tokens in entries:
        node = trie
        for token in tokens:
            node = node.setdefault(token, {})
        node[""] = {}  # an entry ends here

    def emit(node: dict[str, dict]) -> str:
        branches = [token + emit(child) for token, child in sorted(node.items()) if token]
        if not branches:
            return ""
        group = f"(?:{'|'.join(branches)})"
        return group + "?" if "" in node else group

    return emit(trie)


class PromptFilter:
    """Refuses prompts that contain a blocked word or phrase."""

    def __init__(self, blocked: Iterable[str] = ()) -> None:
        self.blocked = tuple(blocked)
        entries = [tokens for entry in self.blocked if (tokens := _entry_tokens(entry))]
        self._standalone: re.Pattern[str] | None = None
        self._anywhere: re.Pattern[str] | None = None
        if entries:
            pattern = _trie_pattern(entries)
            # Compiled once: `check` runs on every command. A plural ending still counts.
            self._standalone = re.compile(rf"(?<![^\W_]){pattern}(?:e?[s5$z])?(?![^\W_])")
            self._anywhere = re.compile(pattern)

    @classmethod
    def from_config(cls, config: SafetyConfig, *, base_dir: Path) -> PromptFilter:
        """The config's `blocked_words` plus the words file (one per line, `#` comments)."""
        entries = list(config.blocked_words)
        if config.words_file:
            path = Path(config.words_file).expanduser()
            path = path if path.is_absolute() else base_dir / path
            entries += read_words_file(path)
        return cls(tuple(entries))

    def check(self, text: str) -> str | None:
        """The refusal to show, or None when the prompt may run."""
        return REFUSAL if self.is_blocked(text) else None

    def is_blocked(self, text: str) -> bool:
        if self._standalone is None or self._anywhere is None or not text:
            return False
        folded = normalise(text)
        if self._standalone.search(folded):
            return True
        # Inside letters spelled out one by one there are no word boundaries to trust.
        for match in _SPELLED_OUT.finditer(folded):
            if self._anywhere.search(_SEPARATORS.sub("", match[0])):
                return True
        return False


def read_words_file(path: Path) -> list[str]:
    """Blocked words, one per line; `#` starts a comment, blank lines are skipped."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append(entry)
    return entries
