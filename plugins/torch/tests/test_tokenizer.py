"""The character tokenizer: round trips, specials, the chat rendering."""

from __future__ import annotations

import pytest
from agentlightning_torch.tokenizer import DEFAULT_ALPHABET, CharTokenizer, render_messages
from hypothesis import given
from hypothesis import strategies as st


@given(st.text(alphabet=DEFAULT_ALPHABET, max_size=64))
def test_round_trip(text: str) -> None:
    tok = CharTokenizer()
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert all(5 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


@given(st.text(max_size=32))
def test_unknown_characters_map_to_unk_and_decode_drops_them(text: str) -> None:
    tok = CharTokenizer("abc")
    ids = tok.encode(text)
    assert [i == tok.unk_token_id for i in ids] == [ch not in "abc" for ch in text]
    assert tok.decode(ids) == "".join(ch for ch in text if ch in "abc")


def test_chat_prompt_and_specials() -> None:
    tok = CharTokenizer("abcAB")
    ids = tok.encode_chat([{"role": "system", "content": "a"}, {"role": "user", "content": "bc"}])
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.sep_token_id
    assert tok.decode(ids) == "abc"  # the newline between messages is not in this alphabet
    assert tok.decode([tok.eos_token_id, 5], skip_special_tokens=False) == "<eos>a"
    assert tok.vocab_size == 10


def test_bad_alphabet_and_messages_are_named() -> None:
    with pytest.raises(ValueError, match="repeat"):
        CharTokenizer("aa")
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer("")
    with pytest.raises(ValueError, match=r"messages\[1\]"):
        render_messages([{"role": "user", "content": "x"}, "oops"])  # type: ignore[list-item]
    assert render_messages([{"role": "user", "content": [{"type": "text", "text": "hi"}]}]) == "hi"
