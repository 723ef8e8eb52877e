"""A character tokenizer with a tiny chat template, for models trained from scratch (pure Python, no torch)."""

from __future__ import annotations

import string
from typing import Any, Dict, List, Mapping, Sequence

import attrs

__all__ = ["CharTokenizer", "DEFAULT_ALPHABET", "render_messages"]

DEFAULT_ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits + " .,:;?!-'\n"
SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>", "<unk>")


def render_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text a from-scratch model sees: the message contents, one per line (roles are not encoded)."""
    parts: List[str] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message:
            raise ValueError(f"messages[{index}] must be an object with a 'role', got {message!r}")
        content = message.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        parts.append("" if content is None else str(content))
    return "\n".join(parts)


@attrs.define(frozen=True)
class CharTokenizer:
    """One id per character of ``alphabet`` after the special tokens; unknown characters map to ``<unk>``.

    A chat prompt is ``<bos> text <sep>`` and the reply is generated after ``<sep>`` until ``<eos>``.
    """

    alphabet: str = DEFAULT_ALPHABET

    def __attrs_post_init__(self) -> None:
        if len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError("CharTokenizer.alphabet must not repeat characters")
        if not self.alphabet:
            raise ValueError("CharTokenizer.alphabet must not be empty")

    pad_token_id = 0
    bos_token_id = 1
    eos_token_id = 2
    sep_token_id = 3
    unk_token_id = 4

    @property
    def vocab_size(self) -> int:
        return len(SPECIALS) + len(self.alphabet)

    def encode(self, text: str) -> List[int]:
        index = _index_of(self.alphabet)
        return [index.get(ch, self.unk_token_id) for ch in text]

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        out: List[str] = []
        n = len(SPECIALS)
        for token in ids:
            if token >= n and token < self.vocab_size:
                out.append(self.alphabet[token - n])
            elif not skip_special_tokens:
                out.append(SPECIALS[token] if 0 <= token < n else "<unk>")
        return "".join(out)

    def encode_chat(self, messages: Sequence[Mapping[str, Any]]) -> List[int]:
        """Prompt token ids for a chat request."""
        return [self.bos_token_id, *self.encode(render_messages(messages)), self.sep_token_id]

    def to_config(self) -> Dict[str, Any]:
        return {"kind": "char", "alphabet": self.alphabet}


_INDEX_CACHE: Dict[str, Dict[str, int]] = {}


def _index_of(alphabet: str) -> Dict[str, int]:
    index = _INDEX_CACHE.get(alphabet)
    if index is None:
        index = {ch: i + len(SPECIALS) for i, ch in enumerate(alphabet)}
        _INDEX_CACHE[alphabet] = index
    return index
