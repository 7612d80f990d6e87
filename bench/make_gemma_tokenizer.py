"""Writes a tokenizer.json with the structure and size of RadGrounder's (Gemma's SentencePiece BPE as
Hugging Face tokenizers stores it, plus PaliGemma's and RadGrounder's tokens), without downloading
anything. Standard library only, deterministic (the same bytes on every run), so tests can make it and
check its hash.

    python3 bench/make_gemma_tokenizer.py OUT_DIR [--segmentation]

Layout (Gemma / PaliGemma 2): 0 <pad>, 1 <eos>, 2 <bos>, 3 <unk>, 4 <mask>, 5..216 reserved
(<start_of_turn>, <end_of_turn>, <unusedN>), 217..472 byte-fallback pieces <0x00>..<0xFF>, then BPE
pieces up to 256,000 (SentencePiece style, "▁" for a space); 256000..257023 <loc0000>..<loc1023>,
257024..257151 <seg000>..<seg127>, 257152 <image>; then RadGrounder's added tokens: detection
"<p bbox=", "</p>", "id=" (257153..257155), or with --segmentation "<seg>", "</seg>". The pieces are
synthetic (every prefix of a deterministic set of words, radiology and prompt words first), so merges
are consistent and real prompt words are single pieces as in Gemma's vocabulary.
"""
import json
import sys
from pathlib import Path

WORDS = """Caption this image and detect keywords segment Answer Question Clinical information the a an is
of in with no yes left right liver spleen kidney lung heart brain normal enlarged small large lesion mass
cyst fracture there which side structures visible largest structure Beschreibe dieses Bild und detektiere
Schlüsselwörter segmentiere die Antwort Klinische angaben Fragestellung linke rechte links rechts Niere
Milz Leber ist nicht ja nein Sturz Kopf Blutung Tumor marked what stomach pancreas aorta bladder
gallbladder vertebra rib trachea esophagus colon duodenum femur hip adrenal gland portal vein""".split()
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwxzq" for v in "aeiouy"] + list("aeiou")
PIECES = 256000
FIRST_PIECE = 473
SPACE = "\u2581"


def synthetic_words():
    """Deterministic pseudo-words: every 1- to 4-syllable combination, in a fixed order."""
    n = len(SYLLABLES)
    for length in range(1, 5):
        for i in range(n ** length):
            word, rest = "", i
            for _ in range(length):
                word += SYLLABLES[rest % n]
                rest //= n
            yield word


def main():
    out = Path(sys.argv[1])
    segmentation = "--segmentation" in sys.argv
    out.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
    vocab = {t: i for i, t in enumerate(specials)}
    while len(vocab) < 217:
        vocab[f"<unused{len(vocab) - len(specials)}>"] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    merges = []

    def add(piece):
        if piece in vocab or len(vocab) >= PIECES:
            return
        if len(piece) > 1:
            add(piece[:-1])
            add(piece[-1])
            if len(vocab) >= PIECES:
                return
            merges.append([piece[:-1], piece[-1]])
        vocab[piece] = len(vocab)

    for ch in [SPACE] + list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;!?-()'\"/äöüßÄÖÜé\n"):
        add(ch)
    for w in WORDS:
        add(SPACE + w)
        add(w)
        add(SPACE + w.lower())
        add(w.lower())
        add(SPACE + w.capitalize())
    for w in synthetic_words():
        if len(vocab) >= PIECES:
            break
        add(SPACE + w)
        add(w)
    assert len(vocab) == PIECES, len(vocab)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(specials)]
    extra = [f"<loc{i:04d}>" for i in range(1024)] + [f"<seg{i:03d}>" for i in range(128)] + ["<image>"]
    extra += ["<seg>", "</seg>"] if segmentation else ["<p bbox=", "</p>", "id="]
    for i, t in enumerate(extra):
        added.append({"id": PIECES + i, "content": t, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": t not in ("<p bbox=", "</p>", "id=")
                      and not t.startswith("<seg>") and t != "</seg>"})
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }
    text = json.dumps(tokenizer, ensure_ascii=False, separators=(",", ":"))
    (out / "tokenizer.json").write_text(text, encoding="utf-8")
    print(out / "tokenizer.json", len(vocab) + len(extra), "tokens", len(merges), "merges", len(text), "bytes")


if __name__ == "__main__":
    main()
