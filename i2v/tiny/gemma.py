"""A tiny Gemma tokenizer built locally, with no download, for the tiny LTX-2 pipeline.

Gemma's layout, scaled down: ``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3, ``<mask>`` 4, the
256 byte-fallback tokens ``<0x00>``..``<0xFF>``, ``"▁"`` and the characters of the built-in text,
BPE merges learnt greedily from that text, and the three image tokens (``<start_of_image>``,
``<end_of_image>``, ``<image_soft_token>``) as the top ids. It is the tokenizers-backed
``GemmaTokenizer`` (== ``GemmaTokenizerFast`` in transformers 5): byte fallback, spaces as ``"▁"``,
``<bos>`` prepended, left padding, as the LTX-2 pipelines expect.

Deterministic (same arguments -> same vocabulary); round-trips through ``save_pretrained`` /
``from_pretrained``. Import-safe: needs transformers and tokenizers, not torch.
"""

from __future__ import annotations

from collections import Counter

from transformers import GemmaTokenizer

from i2v.tiny.tokenizers import CORPUS, merge_pair

SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
IMAGE_TOKENS = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")
SPACE = "\u2581"
_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"


def _words() -> Counter[tuple[str, ...]]:
    """Corpus words as symbol tuples, each starting with "▁" as Gemma's normaliser makes them."""
    return Counter((SPACE, *word) for word in CORPUS.split())


def _base_symbols() -> list[str]:
    return [SPACE, *sorted(set("".join(CORPUS.split())))]


def _merges(n_merges: int, have: set[str]) -> list[tuple[str, str]]:
    """Greedy BPE over the corpus (ties broken lexically), topped up with letter pairs; every merge
    yields a new symbol, so each one adds exactly one id."""
    words = _words()
    splits = {w: w for w in words}
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for w, symbols in splits.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                if pair[0] + pair[1] not in have:
                    pairs[pair] += words[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        have.add(best[0] + best[1])
        merge_pair(splits, best)
    for a in _LETTERS:
        for b in _LETTERS:
            if len(merges) >= n_merges:
                return merges
            if a + b not in have:
                merges.append((a, b))
                have.add(a + b)
    if len(merges) < n_merges:
        raise ValueError(f"gemma_tokenizer: can make at most {len(merges)} merges, asked for {n_merges}")
    return merges


def gemma_tokenizer(
    vocab_size: int = 384, model_max_length: int = 1024, padding_side: str = "left"
) -> GemmaTokenizer:
    """A Gemma-layout byte-fallback BPE tokenizer with exactly ``vocab_size`` ids."""
    symbols = [*SPECIALS, *(f"<0x{b:02X}>" for b in range(256)), *_base_symbols()]
    n_merges = vocab_size - len(symbols) - len(IMAGE_TOKENS)
    if n_merges < 0:
        raise ValueError(
            f"gemma_tokenizer: vocab_size must be at least {len(symbols) + len(IMAGE_TOKENS)}, "
            f"got {vocab_size}"
        )
    merges = _merges(n_merges, set(symbols))
    symbols += [a + b for a, b in merges]
    symbols += IMAGE_TOKENS
    vocab = {s: i for i, s in enumerate(symbols)}
    if len(vocab) != vocab_size:
        raise AssertionError(f"gemma_tokenizer built {len(vocab)} ids, wanted {vocab_size}")
    tok = GemmaTokenizer(
        vocab=vocab,
        merges=merges,
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=model_max_length,
        padding_side=padding_side,
    )
    tok.add_special_tokens({"additional_special_tokens": list(IMAGE_TOKENS)})
    if len(tok) != vocab_size:
        raise AssertionError(
            f"gemma_tokenizer: {len(tok)} ids after adding image tokens, wanted {vocab_size}"
        )
    return tok


__all__ = ["gemma_tokenizer", "SPECIALS", "IMAGE_TOKENS"]
