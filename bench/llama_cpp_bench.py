#!/usr/bin/env python3
"""llama.cpp on the text decoder of a PaliGemma-2 checkpoint, for bench/quantized.sh.

llama.cpp has no PaliGemma, but PaliGemma 2's text decoder is a plain Gemma 2: this takes it out of
a checkpoint (the same weights Groundglass decodes with), converts it with llama.cpp's own
convert_hf_to_gguf.py (from the llama-cpp-python source release on PyPI, which also builds
llama.cpp), quantizes with llama.cpp, and times decoding through llama-cpp-python.

  python3 bench/llama_cpp_bench.py gguf MODEL OUT [--types bf16,q8_0,q4_k]
  python3 bench/llama_cpp_bench.py time OUT/gemma2-q8_0.gguf --prompt-tokens 273 --new-tokens 32

Needs: llama-cpp-python (built from source: CMAKE_ARGS=-DGGML_NATIVE=ON pip install
llama-cpp-python), torch, transformers, safetensors, sentencepiece, numpy.
"""
import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path


def llama_cpp_source():
    """The llama.cpp tree of the installed llama-cpp-python's source release (downloaded once)."""
    version = importlib.metadata.version("llama-cpp-python")
    root = Path(os.environ.get("LLAMA_CPP_SRC", tempfile.gettempdir())) / f"llama-cpp-python-{version}"
    tree = root / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    if not (tree / "convert_hf_to_gguf.py").exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"llama-cpp-python=={version}",
             "--no-deps", "--no-binary", ":all:", "-d", str(root)],
            check=True, stdout=subprocess.DEVNULL)
        with tarfile.open(next(root.glob("llama_cpp_python-*.tar.gz"))) as t:
            t.extractall(root)
    return tree


def text_decoder(model, out):
    """A Gemma2ForCausalLM folder holding `model`'s text decoder, as transformers saves one."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoConfig
    import sentencepiece as spm

    out.mkdir(parents=True, exist_ok=True)
    cfg = AutoConfig.from_pretrained(model).text_config.to_dict()
    cfg.update(architectures=["Gemma2ForCausalLM"], model_type="gemma2", tie_word_embeddings=True,
               torch_dtype="bfloat16")
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    tensors = {}
    for shard in sorted(Path(model).glob("*.safetensors")):
        with safe_open(shard, "pt") as f:
            for name in f.keys():
                for prefix in ("model.language_model.", "language_model.model."):
                    if name.startswith(prefix):
                        tensors["model." + name[len(prefix):]] = f.get_tensor(name)
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    # The converter reads a SentencePiece model and pads the vocabulary to vocab_size with
    # placeholders: a small one serves (decoding speed does not depend on the token strings).
    words = [f"w{i} x{i % 97} y{i % 13}" for i in range(4000)]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(words), model_prefix=str(out / "tokenizer"),
                                   vocab_size=100, model_type="unigram", bos_id=2, eos_id=1,
                                   pad_id=0, unk_id=3, minloglevel=2)
    return out


def make_gguf(model, out, types):
    import llama_cpp

    out = Path(out)
    hf = text_decoder(model, out / "gemma2-hf")
    convert = llama_cpp_source() / "convert_hf_to_gguf.py"
    made = {}
    base = out / "gemma2-bf16.gguf"
    subprocess.run([sys.executable, str(convert), str(hf), "--outtype", "bf16", "--outfile", str(base)],
                   check=True, stdout=subprocess.DEVNULL)
    made["bf16"] = base
    for t in types:
        if t == "bf16":
            continue
        path = out / f"gemma2-{t}.gguf"
        if t == "q8_0":
            # The converter writes Q8_0 itself.
            subprocess.run([sys.executable, str(convert), str(hf), "--outtype", "q8_0", "--outfile",
                            str(path)], check=True, stdout=subprocess.DEVNULL)
        else:
            # Every matrix in the one type ("pure"), as Groundglass quantizes them, rather than a
            # Q4_K_M mix with Q6_K layers.
            ftype = {"q4_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S}[t]
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = ftype
            params.nthread = os.cpu_count() or 1
            params.pure = True
            rc = llama_cpp.llama_model_quantize(str(base).encode(), str(path).encode(), params)
            if rc != 0:
                raise SystemExit(f"llama_model_quantize {t}: {rc}")
        made[t] = path
    print(json.dumps({k: str(v) for k, v in made.items()}))


def time_decode(gguf, prompt_tokens, new_tokens, threads):
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    if os.environ.get("LLAMA_EXTRA_BUFTS") != "1":
        # llama.cpp 0.3.36's extra buffer types (AMX / repacked weights) crash with a
        # segmentation fault on quantized models on this machine's Xeon (seen 2026-12-01); without
        # them it runs its plain CPU kernels. LLAMA_EXTRA_BUFTS=1 tries them.
        default = llama_cpp.llama_model_default_params

        def params():
            p = default()
            p.use_extra_bufts = False
            return p

        llama_cpp.llama_model_default_params = params
        llama_cpp.llama.llama_cpp.llama_model_default_params = params

    llm = Llama(model_path=str(gguf), n_threads=threads, n_threads_batch=threads,
                n_ctx=max(1024, prompt_tokens + new_tokens + 8), n_batch=512, verbose=False)
    # <bos> then fixed ordinary ids, as `groundglass bench model` (which also has 256 image tokens).
    ids = [2] + [1000 + 37 * i for i in range(prompt_tokens - 1)]
    start = time.perf_counter()
    llm.eval(ids)
    token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    ttft = time.perf_counter() - start
    decode = time.perf_counter()
    for _ in range(1, new_tokens):
        llm.eval([token])
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    seconds = time.perf_counter() - decode
    size = Path(gguf).stat().st_size
    print(json.dumps({"gguf": str(gguf), "bytes": size, "threads": threads, "prompt_len": prompt_tokens,
                      "new_tokens": new_tokens, "ttft_ms": ttft * 1e3,
                      "tok_per_s": (new_tokens - 1) / seconds}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["gguf", "time"])
    ap.add_argument("path")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--types", default="bf16,q8_0,q4_k")
    ap.add_argument("--prompt-tokens", type=int, default=273)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    if a.what == "gguf":
        make_gguf(a.path, a.out, a.types.split(","))
    else:
        time_decode(a.path, a.prompt_tokens, a.new_tokens, a.threads)


if __name__ == "__main__":
    main()
