"""``analysis.word_trie.trie_pattern`` finds exactly what the alternation of its words does."""

from __future__ import annotations

import random
import re

from ml_switcheroo.analysis.cross_file import _one_of
from ml_switcheroo.analysis.word_trie import trie_pattern


def _alternation(words: list[bytes]) -> re.Pattern[bytes]:
    return re.compile(b"|".join(re.escape(w) for w in words) if words else rb"(?!)")


def test_found_where_the_alternation_is() -> None:
    rng = random.Random(7)
    letters = b"ab.(|*"
    for _ in range(3000):
        pool = {bytes(rng.choice(letters) for _ in range(rng.randint(1, 4))) for _ in range(5)}
        words = sorted(w for w in pool if not any(o != w and o in w for o in pool))
        text = bytes(rng.choice(letters + b"xy") for _ in range(rng.randint(0, 12)))
        found = trie_pattern(words).search(text) is not None
        assert found == (_alternation(words).search(text) is not None), (words, text)


def test_no_word_is_never_found() -> None:
    assert trie_pattern([]).search(b"anything") is None


def test_one_of_keeps_its_answers() -> None:
    words = (b"Adam", b"AdamW", b"Adagrad", b"SGD", b"optax")
    assert _one_of(words).search(b"x = torch.optim.Adagrad(p)")
    assert _one_of(words).search(b"opt = AdamW(p)")
    assert not _one_of(words).search(b"Ada Adag SG optim")
