#!/usr/bin/env python3
"""Measure prefill and decode iteration times of an LLM's shape on the GPU this runs on.

Builds the model from its catalog/models.yaml entry with random bf16 weights (no downloads: timings
depend on shapes, not values), at the per-GPU shard shape of tensor parallelism --tp (heads/TP,
KV heads/TP (replicated when fewer than TP), ffn/TP, vocab/TP), runs a prefill iteration over a
batch x seq_len grid and a decode step over a batch x context grid (decode captured as a CUDA graph),
and writes the splitscale profile CSV:

    model,gpu,tp,phase,batch,seq_len,context,ms

One process: the shard's compute only (no all-reduce is measured; see profiler/README.md).
Under torchrun with --nproc-per-node equal to --tp, every rank holds one shard and the two
all-reduces per layer run over NCCL, so the times include communication; rank 0 writes the CSV.

    python3 profiler/profile_llm.py --model llama3-8b --out llama3-8b-h100-tp1.csv
    python3 profiler/profile_llm.py --model llama2-70b --tp 8 --out llama2-70b-h100-tp8-shard.csv
    python3 profiler/profile_llm.py --model llama2-70b --tp 8 --dry-run   # shapes and grid, no GPU

Needs PyTorch with CUDA (2.1 or newer; PyYAML optional).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "catalog" / "models.yaml"

# torch.cuda.get_device_name() fragments -> catalog/gpus.yaml names (first match wins).
GPU_NAMES = [
    ("H200", "h200-sxm-141gb"),
    ("H100", "h100-sxm-80gb"),
    ("A100-SXM4-40GB", "a100-sxm-40gb"),
    ("A100", "a100-sxm-80gb"),
    ("L40S", "l40s-48gb"),
    ("MI300X", "mi300x-192gb"),
]


# ---- catalog ---------------------------------------------------------------------------------------


def _scalar(text: str):
    text = text.split(" #", 1)[0].strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip("\"'")


def read_models(path: Path) -> dict:
    """catalog/models.yaml as a dict; PyYAML if installed, else a reader for its flat two-level form."""
    try:
        import yaml  # type: ignore

        with open(path, encoding="utf8") as f:
            return yaml.safe_load(f)
    except ImportError:
        pass
    models: dict = {}
    current = None
    with open(path, encoding="utf8") as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line.startswith(" "):
                current = line.split(":", 1)[0].strip()
                models[current] = {}
            elif current is not None:
                key, _, value = line.strip().partition(":")
                models[current][key.strip()] = _scalar(value)
    return models


@dataclass(frozen=True)
class Shard:
    """One GPU's slice of the model under tensor parallelism tp (Megatron-style)."""

    name: str
    tp: int
    layers: int
    hidden: int
    heads: int  # query heads on this GPU
    kv_heads: int  # KV heads on this GPU
    head_dim: int
    ffn: int  # per expert for MoE
    vocab: int
    gated: bool
    experts: int
    top_k: int

    @property
    def weight_bytes_per_layer(self) -> int:
        attn = self.hidden * (self.heads + 2 * self.kv_heads) * self.head_dim + self.heads * self.head_dim * self.hidden
        mlp = (3 if self.gated else 2) * self.hidden * self.ffn * max(1, self.experts)
        return 2 * (attn + mlp + self.hidden * self.experts + 2 * self.hidden)

    @property
    def kv_bytes_per_token(self) -> int:
        """All layers, bf16."""
        return 2 * 2 * self.kv_heads * self.head_dim * self.layers


def shard_of(name: str, spec: dict, tp: int) -> Shard:
    for key in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "ffn_size", "vocab_size", "mlp"):
        if key not in spec:
            sys.exit(f"{CATALOG}: {name} lacks {key}, which the profiler needs")
    heads, kv_heads = spec["num_heads"], spec["num_kv_heads"]
    if heads % tp != 0:
        sys.exit(f"--tp {tp} does not divide {name}'s {heads} attention heads")
    if kv_heads % tp != 0 and tp % kv_heads != 0:
        sys.exit(f"--tp {tp} neither divides nor is a multiple of {name}'s {kv_heads} KV heads")
    return Shard(
        name=name,
        tp=tp,
        layers=spec["num_layers"],
        hidden=spec["hidden_size"],
        heads=heads // tp,
        kv_heads=math.ceil(kv_heads / tp),
        head_dim=spec.get("head_dim", spec["hidden_size"] // heads),
        ffn=math.ceil(spec["ffn_size"] / tp),
        vocab=math.ceil(spec["vocab_size"] / tp),
        gated=spec["mlp"] == "gated",
        experts=spec.get("num_experts", 0),
        top_k=spec.get("experts_per_token", 0),
    )


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


# ---- the model -------------------------------------------------------------------------------------


def build(shard: Shard, layers: int, torch, device):
    """Random bf16 weights of `layers` layers of the shard, plus the final norm and LM-head shard."""
    gen = torch.Generator(device=device).manual_seed(0)

    def w(*shape):
        return (torch.randn(*shape, generator=gen, device=device, dtype=torch.bfloat16) * 0.02).contiguous()

    h, d = shard.hidden, shard.head_dim
    blocks = []
    for _ in range(layers):
        block = {
            "ln1": torch.ones(h, device=device, dtype=torch.bfloat16),
            "ln2": torch.ones(h, device=device, dtype=torch.bfloat16),
            "wqkv": w(h, (shard.heads + 2 * shard.kv_heads) * d),
            "wo": w(shard.heads * d, h),
        }
        up = 2 * shard.ffn if shard.gated else shard.ffn
        if shard.experts:
            block["router"] = w(h, shard.experts)
            block["w_up"] = w(shard.experts, h, up)
            block["w_down"] = w(shard.experts, shard.ffn, h)
        else:
            block["w_up"] = w(h, up)
            block["w_down"] = w(shard.ffn, h)
        blocks.append(block)
    head = {"ln": torch.ones(h, device=device, dtype=torch.bfloat16), "w": w(h, shard.vocab)}
    return blocks, head


class Runner:
    """One iteration (prefill or decode step) of the shard, written as plain tensor ops."""

    def __init__(self, shard: Shard, blocks, head, torch, group):
        self.s, self.blocks, self.head, self.torch, self.group = shard, blocks, head, torch, group
        self.F = torch.nn.functional
        self.dist = torch.distributed if group is not None else None
        try:  # GQA without materialising repeated K/V (PyTorch >= 2.5)
            q = torch.zeros(1, 2, 1, 8)
            kv = torch.zeros(1, 1, 1, 8)
            self.F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
            self.native_gqa = True
        except (TypeError, RuntimeError):
            self.native_gqa = False

    def norm(self, x, weight):
        if self.s.gated:  # Llama-family models use RMSNorm, the GELU/ReLU families LayerNorm
            variance = x.float().pow(2).mean(-1, keepdim=True)
            return (x.float() * self.torch.rsqrt(variance + 1e-6)).to(x.dtype) * weight
        return self.F.layer_norm(x, (x.shape[-1],), weight)

    def all_reduce(self, x):
        if self.dist is not None:
            self.dist.all_reduce(x, group=self.group)
        return x

    def attention(self, q, k, v, causal):
        if not self.native_gqa and self.s.kv_heads != self.s.heads:
            repeat = self.s.heads // self.s.kv_heads
            k = k.repeat_interleave(repeat, dim=1)
            v = v.repeat_interleave(repeat, dim=1)
            return self.F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        if self.native_gqa:
            return self.F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        return self.F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    def mlp(self, x, block):
        F = self.F
        if not self.s.experts:
            up = x @ block["w_up"]
            if self.s.gated:
                gate, value = up.chunk(2, dim=-1)
                return (F.silu(gate) * value) @ block["w_down"]
            return F.gelu(up) @ block["w_down"]
        # MoE: route each token to its top-k experts and run each expert on its tokens (eager,
        # Hugging Face style; fused MoE kernels such as vLLM's are faster).
        weights, chosen = self.torch.topk(F.softmax((x @ block["router"]).float(), dim=-1), self.s.top_k)
        weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)
        out = self.torch.zeros_like(x)
        for e in range(self.s.experts):
            token, slot = (chosen == e).nonzero(as_tuple=True)
            if token.numel() == 0:
                continue
            up = x[token] @ block["w_up"][e]
            if self.s.gated:
                gate, value = up.chunk(2, dim=-1)
                y = (F.silu(gate) * value) @ block["w_down"][e]
            else:
                y = F.gelu(up) @ block["w_down"][e]
            out.index_add_(0, token, y * weights[token, slot].unsqueeze(-1))
        return out

    def forward(self, x, batch, seq, caches, position):
        """x: (batch*seq, hidden). Prefill when position is None (causal over seq), else one decode
        step (seq == 1) writing K/V at `position` and attending to positions 0..position."""
        s = self.s
        d = s.head_dim
        for block, (k_cache, v_cache) in zip(self.blocks, caches):
            qkv = self.norm(x, block["ln1"]) @ block["wqkv"]
            q, k, v = qkv.split([s.heads * d, s.kv_heads * d, s.kv_heads * d], dim=-1)
            q = q.view(batch, seq, s.heads, d).transpose(1, 2)
            k = k.view(batch, seq, s.kv_heads, d).transpose(1, 2)
            v = v.view(batch, seq, s.kv_heads, d).transpose(1, 2)
            if position is None:
                k_cache[:, :, :seq].copy_(k)
                v_cache[:, :, :seq].copy_(v)
                attn = self.attention(q, k, v, causal=True)
            else:
                k_cache[:, :, position : position + 1].copy_(k)
                v_cache[:, :, position : position + 1].copy_(v)
                end = position + 1
                attn = self.attention(q, k_cache[:, :, :end], v_cache[:, :, :end], causal=False)
            attn = attn.transpose(1, 2).reshape(batch * seq, s.heads * d)
            x = x + self.all_reduce(attn @ block["wo"])
            x = x + self.all_reduce(self.mlp(self.norm(x, block["ln2"]), block))
        # Logits for the last token of each sequence (vocabulary-parallel shard), greedy sampling.
        last = x.view(batch, seq, s.hidden)[:, -1]
        logits = self.norm(last, self.head["ln"]) @ self.head["w"]
        return logits.argmax(dim=-1)


# ---- timing ----------------------------------------------------------------------------------------


def time_ms(fn, torch, warmup: int, repeats: int, barrier) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        barrier()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a catalog/models.yaml entry, e.g. llama3-8b")
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel degree whose shard shape to run")
    parser.add_argument("--out", help="CSV to write (default: <model>-<gpu>-tp<N>.csv)")
    parser.add_argument("--gpu", help="catalog/gpus.yaml name written in the CSV (default: detected)")
    parser.add_argument(
        "--layers",
        type=int,
        help="instantiate only this many layers and scale the time by num_layers/layers (default: all)",
    )
    parser.add_argument("--prefill-batch", type=int_list, default=int_list("1,2,4,8,16,32"))
    parser.add_argument("--prefill-seq", type=int_list, default=int_list("128,256,512,1024,2048,4096,8192"))
    parser.add_argument("--max-prefill-tokens", type=int, default=32768, help="skip larger batch x seq_len")
    parser.add_argument("--decode-batch", type=int_list, default=int_list("1,2,4,8,16,32,64,128,256"))
    parser.add_argument("--decode-context", type=int_list, default=int_list("128,256,512,1024,2048,4096,8192"))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per point (the median is written)")
    parser.add_argument("--no-cuda-graph", action="store_true", help="run decode eagerly")
    parser.add_argument("--dry-run", action="store_true", help="print the shard shape and grid; needs no GPU")
    args = parser.parse_args()

    models = read_models(CATALOG)
    if args.model not in models:
        sys.exit(f"unknown model {args.model!r}; {CATALOG} has: {', '.join(models)}")
    shard = shard_of(args.model, models[args.model], args.tp)
    layers = args.layers or shard.layers
    if not 1 <= layers <= shard.layers:
        sys.exit(f"--layers must be between 1 and {shard.layers}")
    scale = shard.layers / layers
    prefill_points = [
        (b, s) for b in args.prefill_batch for s in args.prefill_seq if b * s <= args.max_prefill_tokens
    ]
    decode_points = [(b, c) for b in args.decode_batch for c in args.decode_context]

    if args.dry_run:
        print(f"shard: {shard}")
        print(f"weights per GPU: {shard.weight_bytes_per_layer * layers / 2**30:.2f} GiB for {layers} layers")
        print(f"KV cache per token: {shard.kv_bytes_per_token / 1024:.1f} KiB (all layers)")
        print(f"prefill points: {prefill_points}")
        print(f"decode points: {decode_points}")
        return

    try:
        import torch
    except ImportError:
        sys.exit("PyTorch is not installed: pip install torch (a CUDA build), or use --dry-run to check shapes")
    if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        sys.exit(f"PyTorch {torch.__version__} is too old: the profiler needs 2.1 or newer")

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: the profiler measures the GPU it runs on (use --dry-run to check shapes)")
    group = None
    rank = 0
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        if world != args.tp:
            sys.exit(f"torchrun started {world} processes but --tp is {args.tp}; they must match")
        import torch.distributed as dist

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
        rank = dist.get_rank()
        group = dist.group.WORLD

    def barrier():
        if group is not None:
            torch.distributed.barrier()

    def log(message: str) -> None:
        if rank == 0:
            print(message, file=sys.stderr, flush=True)

    device = torch.device("cuda")
    device_name = torch.cuda.get_device_name(device)
    gpu = args.gpu or next((name for fragment, name in GPU_NAMES if fragment in device_name), None)
    if gpu is None:
        sys.exit(f"cannot map {device_name!r} to a catalog/gpus.yaml entry; pass --gpu NAME")
    out = Path(args.out or f"{args.model}-{gpu}-tp{args.tp}.csv")

    weights = shard.weight_bytes_per_layer * layers + 2 * shard.hidden * shard.vocab
    if weights > 0.9 * torch.cuda.mem_get_info(device)[0]:
        sys.exit(
            f"{layers} layers of the TP{args.tp} shard need {weights / 2**30:.1f} GiB of weights, more than this "
            "GPU has free; use a larger --tp or --layers K (times are then scaled by num_layers/K)"
        )
    blocks, head = build(shard, layers, torch, device)
    runner = Runner(shard, blocks, head, torch, group)
    log(f"{args.model} TP{args.tp} shard, {layers} of {shard.layers} layers, on {device_name} ({gpu})")

    def fits(extra_bytes: int) -> bool:
        free, _ = torch.cuda.mem_get_info(device)
        ok = torch.tensor([1 if extra_bytes < 0.85 * free else 0], device=device)
        if group is not None:  # every rank must take the same decision
            torch.distributed.all_reduce(ok, op=torch.distributed.ReduceOp.MIN)
        return bool(ok.item())

    def caches(batch: int, length: int):
        shape = (batch, shard.kv_heads, length, shard.head_dim)
        return [
            (torch.empty(shape, device=device, dtype=torch.bfloat16), torch.empty(shape, device=device, dtype=torch.bfloat16))
            for _ in range(layers)
        ]

    rows = []
    activation_bytes = lambda tokens: tokens * (8 * shard.hidden + 6 * shard.ffn * max(1, shard.top_k)) * 2 * 2
    with torch.inference_mode():
        for batch, seq in prefill_points:
            need = shard.kv_bytes_per_token * layers // shard.layers * batch * seq + activation_bytes(batch * seq)
            if not fits(need):
                log(f"skip prefill batch={batch} seq_len={seq}: needs {need / 2**30:.1f} GiB")
                continue
            kv = caches(batch, seq)
            x = torch.randn(batch * seq, shard.hidden, device=device, dtype=torch.bfloat16)
            ms = time_ms(lambda: runner.forward(x, batch, seq, kv, None), torch, args.warmup, args.repeats, barrier)
            rows.append(("prefill", batch, seq, "", ms * scale))
            log(f"prefill batch={batch} seq_len={seq}: {ms * scale:.3f} ms")
            del kv, x
            torch.cuda.empty_cache()

        graphs = not args.no_cuda_graph and shard.experts == 0  # MoE dispatch is data-dependent
        for batch, context in decode_points:
            need = shard.kv_bytes_per_token * layers // shard.layers * batch * (context + 1)
            need += activation_bytes(batch)
            if not fits(need):
                log(f"skip decode batch={batch} context={context}: needs {need / 2**30:.1f} GiB")
                continue
            kv = caches(batch, context + 1)
            for k_cache, v_cache in kv:  # a context of random keys and values
                k_cache.normal_()
                v_cache.normal_()
            x = torch.randn(batch, shard.hidden, device=device, dtype=torch.bfloat16)
            step = lambda: runner.forward(x, batch, 1, kv, context)
            if graphs:
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(2):
                        step()
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    step()
                run = graph.replay
            else:
                graph = None
                run = step
            ms = time_ms(run, torch, args.warmup, args.repeats * 2, barrier)
            rows.append(("decode", batch, "", context, ms * scale))
            log(f"decode batch={batch} context={context}: {ms * scale:.3f} ms")
            del kv, x, graph, run, step
            torch.cuda.empty_cache()

    if rank == 0:
        comm = f"NCCL all-reduce over {world} GPUs" if group is not None else "shard compute only, no all-reduce"
        with open(out, "w", encoding="utf8") as f:
            f.write(
                f"# profiler/profile_llm.py on {device_name}, torch {torch.__version__}, "
                f"{datetime.date.today().isoformat()}\n"
            )
            f.write(
                f"# {args.model} TP{args.tp} shard shape; {comm}; decode "
                f"{'CUDA graphs' if graphs else 'eager'}; median of {args.repeats} (prefill) / "
                f"{args.repeats * 2} (decode) runs after {args.warmup} warm-ups\n"
            )
            if scale != 1:
                f.write(f"# measured {layers} of {shard.layers} layers; times scaled by {scale:g}\n")
            f.write("model,gpu,tp,phase,batch,seq_len,context,ms\n")
            for phase, batch, seq, context, ms in rows:
                f.write(f"{args.model},{gpu},{args.tp},{phase},{batch},{seq},{context},{ms:.6f}\n")
        print(f"wrote {out} ({len(rows)} points)", file=sys.stderr)
    if group is not None:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
