#!/usr/bin/env python3
"""What q8_0's weight rounding alone does to the tiny parity fixture's greedy tokens, in PyTorch.

    python3 bench/q8_0_weight_rounding.py

Loads tests/fixtures/tiny-paligemma2 in transformers (f32), checks that greedy decoding reproduces
the fixture's 12 tokens, then rounds the matrices Groundglass quantizes (the text decoder's, where
the width is a multiple of 32: here the three 48 x 96 down projections) to q8_0 -- blocks of 32,
scale = max|w| / 127 stored as f16, weights round(w / scale) -- and decodes again with f32
activations. Prints how many leading tokens stay. If they change here, they change in any q8_0
implementation: the cause is the weights' rounding, not a kernel or the activations' quantization.
Needs torch, transformers, safetensors.
"""

import json

import torch
from safetensors.torch import load_file
from transformers import PaliGemmaForConditionalGeneration

FIXTURE = "tests/fixtures/tiny-paligemma2"


def q8_0(w: torch.Tensor) -> torch.Tensor:
    n, k = w.shape
    blocks = w.reshape(n, k // 32, 32)
    scale = (blocks.abs().amax(-1, keepdim=True) / 127).half().float()
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (torch.round(blocks / safe) * scale).reshape(n, k)


def main():
    expected = json.load(open(f"{FIXTURE}/expected.json"))
    pixels = load_file(f"{FIXTURE}/expected.safetensors")["pixel_values"]
    model = PaliGemmaForConditionalGeneration.from_pretrained(FIXTURE, dtype=torch.float32).eval()
    ids = torch.tensor([expected["input_ids"]])
    wanted = expected["generated"]

    def greedy():
        out = model.generate(input_ids=ids, pixel_values=pixels, token_type_ids=torch.zeros_like(ids),
                             attention_mask=torch.ones_like(ids), max_new_tokens=len(wanted),
                             do_sample=False)
        return out[0, ids.shape[1]:].tolist()

    f32 = greedy()
    assert f32 == wanted, f"f32 does not reproduce the fixture: {f32} vs {wanted}"
    rounded = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "language_model" in name and p.dim() == 2 and p.shape[1] % 32 == 0 and "embed" not in name:
                p.copy_(q8_0(p))
                rounded.append(f"{name} {tuple(p.shape)}")
    q8 = greedy()
    same = next((i for i, (a, b) in enumerate(zip(q8, wanted)) if a != b), len(wanted))
    print(json.dumps({"rounded": rounded, "f32": f32, "q8_0_weights": q8, "leading_tokens_kept": same,
                      "of": len(wanted)}, indent=1))


if __name__ == "__main__":
    main()
