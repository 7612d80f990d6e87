"""The model benchmark's PyTorch side (bench/model.sh runs it).

    python3 bench/model_torch.py make DIR     # a random ~100M-parameter PaliGemma-2 checkpoint (HF layout)
    python3 bench/model_torch.py make DIR --shape 3b [--bin]
        # RadGrounder's exact shape (SigLIP So400m 27 x 1152, Gemma-2 2B 26 x 2304, 8 / 4 heads of 256,
        # vocabulary 257,216: 3.03 B parameters), bf16, sharded safetensors (5 GB shards); with --bin
        # also DIR-bin: the same weights as RadGrounder's scripts save them (pytorch_model-0000N-of-
        # 0000M.bin + pytorch_model.bin.index.json, tied lm_head stored), for the loader's benchmarks.
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


def make(out, shape="100m", with_bin=False):
    torch.manual_seed(0)
    if shape == "3b":
        vocab, image_token = 257216, 257152
        vision = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                    num_attention_heads=16, image_size=224, patch_size=14, vision_use_head=False,
                                    hidden_act="gelu_pytorch_tanh")
        text = Gemma2Config(vocab_size=vocab, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                            num_attention_heads=8, num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256,
                            sliding_window=4096, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                            max_position_embeddings=8192, pad_token_id=0, eos_token_id=1, bos_token_id=2)
        projection, dtype, shard = 2304, torch.bfloat16, "5GB"
    else:
        vocab = 32000
        image_token = vocab - 1
        vision = SiglipVisionConfig(hidden_size=384, intermediate_size=1536, num_hidden_layers=6,
                                    num_attention_heads=6, image_size=224, patch_size=14, vision_use_head=False)
        text = Gemma2Config(vocab_size=vocab, hidden_size=768, intermediate_size=3072, num_hidden_layers=8,
                            num_attention_heads=8, num_key_value_heads=4, head_dim=96, query_pre_attn_scalar=96,
                            sliding_window=512, max_position_embeddings=2048, pad_token_id=0, eos_token_id=1,
                            bos_token_id=2)
        projection, dtype, shard = 768, torch.float32, "10GB"
    config = PaliGemmaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(), projection_dim=projection,
                             hidden_size=projection, image_token_index=image_token, vocab_size=vocab, pad_token_id=0,
                             eos_token_id=1, bos_token_id=2)
    config.text_config.num_image_tokens = 256
    model = PaliGemmaForConditionalGeneration(config).to(dtype).eval()
    model.save_pretrained(out, safe_serialization=True, max_shard_size=shard)
    print("parameters", sum(p.numel() for p in model.parameters()))
    if with_bin:
        save_bin(model, out.rstrip("/") + "-bin", shard_bytes=5 * 10**9)


def save_bin(model, out, shard_bytes):
    """The weights as transformers 4.x's save_pretrained(safe_serialization=False) writes them (what
    RadGrounder's training scripts produce): torch.save shards with 4.x tensor names, the tied
    `language_model.lm_head.weight` stored as a second name of the embedding, and the index."""
    import os
    os.makedirs(out, exist_ok=True)
    model.config.save_pretrained(out)
    state = {}
    for k, v in model.state_dict().items():
        k = k.removeprefix("model.")
        if k.startswith("vision_tower."):
            k = "vision_tower.vision_model." + k.removeprefix("vision_tower.").removeprefix("vision_model.")
        elif k.startswith("language_model."):
            k = "language_model.model." + k.removeprefix("language_model.").removeprefix("model.")
        elif k == "lm_head.weight":
            k = "language_model.lm_head.weight"
        state[k] = v
    shards, current, size = [], {}, 0
    for k, v in state.items():
        n = v.numel() * v.element_size()
        if current and size + n > shard_bytes:
            shards.append(current)
            current, size = {}, 0
        current[k] = v
        size += n
    shards.append(current)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        torch.save(shard, os.path.join(out, name))
        for k, v in shard.items():
            weight_map[k] = name
            total += v.numel() * v.element_size()
    with open(os.path.join(out, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    print("wrote", out, len(shards), "shards")


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
    text = model.model.language_model if hasattr(model, "model") else model.language_model
    decode_bytes = sum(p.numel() * p.element_size() for p in text.parameters())
    print(json.dumps({"device": device, "decode_bytes": decode_bytes, "threads": torch.get_num_threads(), "torch": torch.__version__,
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
    ap.add_argument("--shape", choices=["100m", "3b"], default="100m")
    ap.add_argument("--bin", action="store_true")
    a = ap.parse_args()
    if a.what == "make":
        make(a.dir, a.shape, a.bin)
    else:
        bench(a.dir, a.new_tokens, a.prompt_tokens, a.runs, a.dtype)
