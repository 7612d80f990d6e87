"""The model benchmark's PyTorch side (bench/model.sh runs it).

    python3 bench/model_torch.py make DIR     # a random ~100M-parameter PaliGemma-2 checkpoint (HF layout)
    python3 bench/model_torch.py time DIR [--new-tokens 64] [--prompt-tokens 16] [--runs 3] [--dtype f32]

`time` prints JSON with ttft_ms (prefill + first token, generate(max_new_tokens=1)) and tok_per_s
((N - 1) / (t(N) - t(1)) with generate(min_new_tokens=N, max_new_tokens=N), greedy), medians after a
warm-up, on the same prompt layout as `groundglass bench model`: image tokens, <bos>, fixed ids.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import Gemma2Config, PaliGemmaConfig, PaliGemmaForConditionalGeneration, SiglipVisionConfig


def make(out):
    torch.manual_seed(0)
    vocab = 32000
    vision = SiglipVisionConfig(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=6,
                                image_size=224, patch_size=14, vision_use_head=False)
    text = Gemma2Config(vocab_size=vocab, hidden_size=768, intermediate_size=3072, num_hidden_layers=8,
                        num_attention_heads=8, num_key_value_heads=4, head_dim=96, query_pre_attn_scalar=96,
                        sliding_window=512, max_position_embeddings=2048, pad_token_id=0, eos_token_id=1,
                        bos_token_id=2)
    config = PaliGemmaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(), projection_dim=768,
                             hidden_size=768, image_token_index=vocab - 1, vocab_size=vocab, pad_token_id=0,
                             eos_token_id=1, bos_token_id=2)
    config.text_config.num_image_tokens = 256
    model = PaliGemmaForConditionalGeneration(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    print("parameters", sum(p.numel() for p in model.parameters()))


def timed(model, **kw):
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**kw)
    return time.perf_counter() - start, out


def bench(path, new_tokens, prompt_tokens, runs, dtype):
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dtype]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = PaliGemmaForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device).eval()
    cfg = model.config
    n_img = cfg.text_config.num_image_tokens or (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    ids = [cfg.image_token_index] * n_img + [2] + [1000 + 37 * i for i in range(prompt_tokens)]
    size = cfg.vision_config.image_size
    kw = dict(input_ids=torch.tensor([ids], device=device),
              attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
              token_type_ids=torch.zeros(1, len(ids), dtype=torch.long, device=device),
              pixel_values=(torch.rand(1, 3, size, size) * 2 - 1).to(device, dtype),
              do_sample=False, eos_token_id=None, pad_token_id=0)
    ttft, speed = [], []
    for run in range(runs + 1):
        t1, _ = timed(model, max_new_tokens=1, min_new_tokens=1, **kw)
        tn, out = timed(model, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kw)
        if device == "cuda":
            torch.cuda.synchronize()
        assert out.shape[1] - len(ids) == new_tokens, out.shape
        if run > 0:
            ttft.append(t1 * 1e3)
            speed.append((new_tokens - 1) / (tn - t1))
    print(json.dumps({"device": device, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "parameters": sum(p.numel() for p in model.parameters()), "prompt_len": len(ids),
                      "new_tokens": new_tokens, "ttft_ms": statistics.median(ttft),
                      "tok_per_s": statistics.median(speed)}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["make", "time"])
    ap.add_argument("dir")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dtype", default="f32")
    a = ap.parse_args()
    make(a.dir) if a.what == "make" else bench(a.dir, a.new_tokens, a.prompt_tokens, a.runs, a.dtype)
