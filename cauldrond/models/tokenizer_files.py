"""CLIP tokenizer folders, written offline: a small one for the tiny models and the real one for checkpoints.

The tiny models get their own byte-level BPE vocabulary in CLIP's file format (``vocab.json`` + ``merges.txt``):
every byte has a symbol, both bare and as a word ending (``</w>``), so any text, in any script, encodes without
unknown tokens. A few merges for common prompt words keep token counts realistic for English prompts.

A real checkpoint needs CLIP's real vocabulary (49408 entries), which no checkpoint file contains. OpenAI's CLIP
package ships it as its BPE merge list (``bpe_simple_vocab_16e6.txt.gz``, MIT licence, 1.3 MB, in
``configs/`` beside this module); the vocabulary follows from the merges exactly as CLIP's own
``simple_tokenizer`` builds it, and that is the ``vocab.json`` the hub's CLIP tokenizers hold.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

# CLIP's special tokens (bandit mistakes the names for passwords).
BOS_TOKEN = "<|startoftext|>"  # nosec B105
EOS_TOKEN = "<|endoftext|>"  # nosec B105
MODEL_MAX_LENGTH = 77
END_OF_WORD = "</w>"

# Words that show up in image prompts; their merges turn each into one or two tokens.
_COMMON_WORDS = (
    *("a", "an", "the", "of", "and", "with", "in", "on", "at", "by", "for", "to", "from"),
    *("photo", "portrait", "painting", "landscape", "cat", "dog", "city", "night", "light", "dark"),
    *("red", "blue", "green", "gold", "white", "black", "sky", "sea", "forest", "mountain", "castle"),
    *("robot", "woman", "man", "girl", "boy", "face", "eyes", "hair", "detailed", "style", "art"),
    *("digital", "oil", "sunset", "cinematic", "lighting", "high", "quality"),
)


def bytes_to_unicode() -> dict[int, str]:
    """Map every byte to a printable unicode character, as byte-level BPE does.

    Bytes that are already printable and not whitespace keep their own character; the others are shifted past
    U+0100 so that no token ever contains a control character or a space."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping: dict[int, str] = {}
    shifted = 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + shifted)
            shifted += 1
    return mapping


def build_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary (token -> id) and the ordered merge rules. Pure and deterministic."""
    symbols = list(bytes_to_unicode().values())
    tokens: list[str] = [*symbols, *(s + END_OF_WORD for s in symbols)]
    known = set(tokens)
    merges: list[tuple[str, str]] = []
    for word in _COMMON_WORDS:
        # Merge left to right, so every prefix of the word becomes a token on the way to the whole word.
        parts = [*word[:-1], word[-1] + END_OF_WORD]
        while len(parts) > 1:
            left, right = parts[0], parts[1]
            merged = left + right
            if merged not in known:
                merges.append((left, right))
                tokens.append(merged)
                known.add(merged)
            parts = [merged, *parts[2:]]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    return {token: index for index, token in enumerate(tokens)}, merges


def vocab_size() -> int:
    return len(build_vocab_and_merges()[0])


def special_token_ids() -> tuple[int, int]:
    """(bos id, eos id); the text encoder's config needs them, and eos doubles as padding as in SD 1.x."""
    vocab = build_vocab_and_merges()[0]
    return vocab[BOS_TOKEN], vocab[EOS_TOKEN]


CLIP_BPE_FILE = "clip_bpe_simple_vocab_16e6.txt.gz"
# CLIP keeps the first 49152 - 256 - 2 merges of the file (after its version line): 49408 tokens in all.
_CLIP_MERGE_COUNT = 49152 - 256 - 2


def clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's real vocabulary and merges, built from the shipped BPE file as CLIP's simple_tokenizer does."""
    packed = resources.files("cauldrond.models").joinpath("configs", CLIP_BPE_FILE).read_bytes()
    lines = gzip.decompress(packed).decode("utf-8").split("\n")[1 : _CLIP_MERGE_COUNT + 1]
    merges = [(left, right) for left, right in (line.split() for line in lines)]
    # CLIP lists the printable bytes first, then the shifted ones (the tiny vocabulary keeps byte order).
    mapping = bytes_to_unicode()
    symbols = sorted(mapping.values(), key=lambda symbol: (ord(symbol) >= 256, ord(symbol)))
    tokens = [*symbols, *(s + END_OF_WORD for s in symbols), *(left + right for left, right in merges)]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    return {token: index for index, token in enumerate(tokens)}, merges


def write_clip_tokenizer(folder: Path, pad_token: str = EOS_TOKEN) -> None:
    """Write CLIP's real tokenizer folder. ``pad_token``: "<|endoftext|>" for OpenAI's CLIP ViT-L (SD 1.x, SDXL's
    first encoder), "!" for the OpenCLIP encoders (SD 2.x, SDXL's second), which were trained padding with id 0."""
    vocab, merges = clip_vocab_and_merges()
    _write_folder(folder, vocab, merges, pad_token)


def write_tokenizer_files(folder: Path) -> None:
    """Write a CLIPTokenizer folder: vocab.json, merges.txt and the configs that fix the 77-token length."""
    vocab, merges = build_vocab_and_merges()
    _write_folder(folder, vocab, merges, EOS_TOKEN)


def _write_folder(folder: Path, vocab: dict[str, int], merges: list[tuple[str, str]], pad_token: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1), encoding="utf-8")
    merge_lines = ["#version: 0.2", *(f"{left} {right}" for left, right in merges)]
    (folder / "merges.txt").write_text("\n".join(merge_lines) + "\n", encoding="utf-8")
    specials = {
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "unk_token": EOS_TOKEN,
        "pad_token": pad_token,
    }
    tokenizer_config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MODEL_MAX_LENGTH,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        **specials,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2), encoding="utf-8")
