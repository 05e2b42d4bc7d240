"""Tokenizers built locally, with no download: tiny CLIP (byte-level BPE) and T5/UMT5 (Unigram).

The tiny pipelines need real tokenizers (the pipelines call them with padding, truncation and
attention masks) but the hubs are unreachable, so both are made here from a built-in text:

* `clip_tokenizer` - CLIP's byte-level BPE: 256 byte symbols, the same 256 with ``</w>``, merges
  learnt from the built-in text (topped up with letter n-grams), then ``<|startoftext|>`` and
  ``<|endoftext|>`` as the two highest ids, as in openai/clip-vit-large-patch14.
* `t5_tokenizer` - T5's layout: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, then Unigram pieces scored by
  log frequency, then ``extra_ids`` sentinels; ``len(tokenizer) == vocab_size`` exactly, so it
  matches a text encoder built with that ``vocab_size``.

Both are deterministic (same arguments -> same vocabulary) and round-trip through
``save_pretrained`` / ``from_pretrained``. Import-safe: needs transformers and tokenizers, not torch.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from functools import lru_cache

from transformers import CLIPTokenizer, T5Tokenizer

CORPUS = """
A cat walks slowly across a sunlit kitchen floor, its tail swaying as the camera follows.
Waves roll onto a quiet beach at sunset; the sky turns orange, pink and purple over the sea.
A red car drives along a winding mountain road through pine forests under heavy clouds.
An astronaut floats inside a space station, turning to look at the blue planet below.
The old lighthouse stands on the rocks while gulls circle and the storm gathers strength.
A woman with a yellow umbrella crosses a busy street in the rain at night, neon lights shining.
Close-up of coffee being poured into a white cup, steam rising in the morning light.
A dog runs through tall green grass in a field, chasing a ball thrown by a child.
Snow falls gently on a small wooden cabin; smoke drifts from the chimney into the cold air.
Fireworks explode above the city skyline, reflected in the river, as the crowd cheers.
A hummingbird hovers near bright flowers, wings beating fast, in slow motion, shallow focus.
The train pulls into the station, doors open, and passengers step onto the platform.
Cinematic shot, high quality, detailed, smooth motion, natural lighting, 4k, realistic colors.
Low quality, blurry, distorted, static, watermark, text, worst quality, jpeg artifacts, ugly.
The camera pans left, zooms in, then tilts up toward the mountains and the clouds above them.
Two people dance in an empty ballroom; their shadows move across the polished marble floor.
Leaves fall from the autumn trees and spin in the wind before landing on the stone path.
A robot assembles a tiny watch with careful precise movements under a bright lamp.
Rain drops on a window, the city lights blurred behind the glass, a calm evening mood.
0 1 2 3 4 5 6 7 8 9 10 16 24 25 30 32 48 64 81 121 480 512 720 832 1024 1280
"""

CLIP_BOS = "<|startoftext|>"
CLIP_EOS = "<|endoftext|>"
_CLIP_WORD = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+")

T5_SPECIALS = ("<pad>", "</s>", "<unk>")
SPIECE_UNDERLINE = "\u2581"
_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
_T5_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()[]{}<>/\\@#$%^&*+=_|~`"


@lru_cache(maxsize=1)
def _bytes_to_unicode() -> tuple[str, ...]:
    """GPT-2 / CLIP byte -> printable character table, in CLIP's vocabulary order."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + n)
            n += 1
    table = dict(zip(printable, codes, strict=True))
    return tuple(chr(table[b]) for b in range(256))


def merge_pair(splits: dict, pair: tuple[str, str]) -> None:
    """Apply one BPE merge in place: every adjacent `pair` in every word's symbols becomes one symbol."""
    joined = pair[0] + pair[1]
    for w, symbols in splits.items():
        out: list[str] = []
        i = 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                out.append(joined)
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        splits[w] = tuple(out)


def _clip_merges(n_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE merges over the corpus' words (ties broken lexically), topped up with letter n-grams."""
    words = Counter(_CLIP_WORD.findall(CORPUS.lower()))
    # Each word is a tuple of symbols; the last carries the end-of-word suffix, as CLIP does.
    splits = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in words}
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for w, symbols in splits.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                pairs[pair] += words[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merge_pair(splits, best)
    # Top up with letter n-grams, breadth first: (prefix, c) and (prefix, c</w>) for every prefix
    # already in the vocabulary, so any vocab_size (49408 for the real CLIP) can be reached.
    have = set(_bytes_to_unicode()) | {c + "</w>" for c in _bytes_to_unicode()} | {a + b for a, b in merges}
    prefixes = list(_LETTERS)
    for prefix in prefixes:  # grows while iterating
        for c in _LETTERS:
            for piece in (c + "</w>", c):
                if len(merges) >= n_merges:
                    return merges
                if prefix + piece not in have:
                    merges.append((prefix, piece))
                    have.add(prefix + piece)
            prefixes.append(prefix + c)
    return merges


def clip_tokenizer(vocab_size: int = 1000, model_max_length: int = 77) -> CLIPTokenizer:
    """A CLIP byte-level BPE tokenizer with exactly ``vocab_size`` ids (at least 514).

    The two special tokens take the highest ids, so CLIP's legacy "argmax of input_ids is the
    EOS position" pooling (``eos_token_id == 2`` in old configs) still finds the EOS token.
    """
    if vocab_size < 514:
        raise ValueError(
            f"clip_tokenizer: vocab_size must be at least 514 (512 byte symbols + 2 specials), got {vocab_size}"
        )
    alphabet = _bytes_to_unicode()
    symbols = list(alphabet) + [c + "</w>" for c in alphabet]
    merges = _clip_merges(vocab_size - len(symbols) - 2)
    symbols += [a + b for a, b in merges]
    symbols += [CLIP_BOS, CLIP_EOS]
    vocab = {s: i for i, s in enumerate(symbols)}
    if len(vocab) != vocab_size:  # a merge result equal to an existing symbol would collapse ids
        raise AssertionError(f"clip_tokenizer built {len(vocab)} ids, wanted {vocab_size}")
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=CLIP_EOS,
        bos_token=CLIP_BOS,
        eos_token=CLIP_EOS,
        pad_token=CLIP_EOS,
        model_max_length=model_max_length,
    )


def _t5_pieces(n: int) -> list[tuple[str, float]]:
    """``n`` Unigram pieces with log-frequency scores: characters first (so any ASCII text encodes),
    then whole corpus words, then their prefixes, then letter n-grams."""
    words = Counter(re.findall(r"\w+|[^\w\s]", CORPUS))
    total = sum(words.values())
    pieces: dict[str, float] = {SPIECE_UNDERLINE: -2.0}
    for c in _T5_CHARS:
        pieces.setdefault(c, -8.0)
        pieces.setdefault(SPIECE_UNDERLINE + c, -9.0)
    by_freq = sorted(words, key=lambda w: (-words[w], w))
    for w in by_freq:
        pieces.setdefault(SPIECE_UNDERLINE + w, math.log(words[w] / total))
    for w in by_freq:
        for k in range(2, len(w)):
            pieces.setdefault(w[:k], math.log(words[w] / total) - 1.0 - k)
    fillers = ("".join(p) for k in itertools.count(2) for p in itertools.product(_LETTERS, repeat=k))
    while len(pieces) < n:
        piece = next(fillers)
        pieces.setdefault(piece, -4.0 * len(piece))
    return list(pieces.items())[:n]


def t5_tokenizer(vocab_size: int = 1000, model_max_length: int = 512, extra_ids: int = 0) -> T5Tokenizer:
    """A T5/UMT5-layout Unigram tokenizer with exactly ``vocab_size`` ids (``len(tok) == vocab_size``).

    ``extra_ids`` sentinels (``<extra_id_N>``) take the top ids, as in T5; the default 0 keeps the
    vocabulary all ordinary pieces, which is what a text-conditioning encoder needs.
    """
    n_pieces = vocab_size - len(T5_SPECIALS) - extra_ids
    if n_pieces < 1 + 2 * len(_T5_CHARS):
        raise ValueError(
            f"t5_tokenizer: vocab_size {vocab_size} too small (need at least "
            f"{len(T5_SPECIALS) + extra_ids + 1 + 2 * len(_T5_CHARS)})"
        )
    vocab = [(s, 0.0) for s in T5_SPECIALS] + _t5_pieces(n_pieces)
    vocab += [(f"<extra_id_{i}>", 0.0) for i in reversed(range(extra_ids))]
    tok = T5Tokenizer(vocab=vocab, extra_ids=extra_ids, model_max_length=model_max_length)
    if len(tok) != vocab_size:
        raise AssertionError(f"t5_tokenizer built {len(tok)} ids, wanted {vocab_size}")
    return tok


__all__ = ["clip_tokenizer", "t5_tokenizer"]
