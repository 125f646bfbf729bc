"""training.loop.trainer pieces in-process: accumulation groups, compiled steps and their fallback to eager."""

from __future__ import annotations

import pytest
import torch
from _windows import MeanModel
from accelerate import Accelerator

from training.loop.trainer import accumulation_group


def test_accumulation_groups_end_with_the_epoch():
    # 7 micro-batches, grad_accum 3: groups [0,1,2] [3,4,5] [6]; the optimizer steps after 2, 5 and 6
    got = [accumulation_group(i, 7, 3) for i in range(7)]
    assert got == [(3, False), (3, False), (3, True), (3, False), (3, False), (3, True), (1, True)]
    assert [accumulation_group(i, 4, 1) for i in range(4)] == [(1, True)] * 4
    assert [accumulation_group(i, 2, 5) for i in range(2)] == [(2, False), (2, True)]


def test_a_compiler_failure_on_the_first_step_falls_back_to_eager(caplog):
    """A compiled model that fails on its first step (no working Triton, ...): one warning, the step is
    redone eagerly, and later steps stay eager."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from training.loop.trainer import train_step

    model = MeanModel()
    w = torch.nn.Parameter(torch.zeros(1))
    calls = []

    def failing(batch):
        calls.append("compiled")
        raise RuntimeError("backend compiler failed\nlong traceback")

    acc = Accelerator(cpu=True)
    opt = torch.optim.SGD([w], lr=0.1)
    s = SimpleNamespace(cfg=OmegaConf.create({"training": {"batch_size": 2, "clip_grad": 0.0}}), accelerator=acc,
                        model=lambda b: {k: v + 0 * w.sum() for k, v in model(b).items()}, compiled=failing,
                        compile_checked=False, compile_mode="default", compiled_steps=0, optimizer=opt, scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1),
                        params=[w], step=0)
    batch = {"proprio": torch.tensor([[1.0], [3.0]])}
    with caplog.at_level("WARNING"):
        out = train_step(s, batch, 1, True, 0)
    assert float(out["loss"].detach()) == 2.0 and s.step == 1 and s.compiled is None
    assert "torch.compile failed on compiled training step 1" in caplog.text and "long traceback" not in caplog.text
    train_step(s, batch, 1, True, 0)
    assert calls == ["compiled"] and s.step == 2


def test_a_cuda_graph_failure_on_a_later_checked_step_falls_back_too(caplog):
    """CUDA graphs are recorded on the second compiled call and replayed from the third: a failure there
    is caught like a compile failure; after CHECKED_STEPS good steps the compiled model is trusted."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from training.loop.trainer import CHECKED_STEPS, train_step

    w = torch.nn.Parameter(torch.zeros(1))
    calls = []

    def flaky(batch, fail_at=2):
        calls.append(len(calls) + 1)
        if len(calls) == fail_at:
            raise RuntimeError("Error: accessing tensor output of CUDAGraphs that has been overwritten")
        return {"loss": (batch["proprio"] - w).pow(2).mean()}

    opt = torch.optim.SGD([w], lr=0.1)
    s = SimpleNamespace(cfg=OmegaConf.create({"training": {"batch_size": 2, "clip_grad": 0.0}}),
                        accelerator=Accelerator(cpu=True), model=lambda b: {"loss": (b["proprio"] - w).pow(2).mean()},
                        compiled=flaky, compile_checked=False, compile_mode="reduce-overhead", compiled_steps=0,
                        optimizer=opt, scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1),
                        params=[w], step=0)
    batch = {"proprio": torch.tensor([[1.0], [3.0]])}
    train_step(s, batch, 1, True, 0)
    assert s.compiled is flaky and not s.compile_checked
    with caplog.at_level("WARNING"):
        train_step(s, batch, 1, True, 0)
    assert s.compiled is None and s.step == 2 and "compiled training step 2" in caplog.text
    # every step stepped the optimizer once: w moved towards the batch mean twice (lr 0.1, grad 2 (w - 2))
    assert float(w.detach()) == pytest.approx(0.4 + 0.2 * (2 - 0.4))

    s.compiled, s.compiled_steps, calls[:] = (lambda b: flaky(b, fail_at=-1)), 0, []
    for _ in range(CHECKED_STEPS):
        train_step(s, batch, 1, True, 0)
    assert s.compile_checked and s.compiled_steps == CHECKED_STEPS


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it)")
def test_reduce_overhead_training_steps_give_the_eager_weights_on_a_gpu():
    """training.compile=auto on one GPU (mode reduce-overhead: forward and backward replayed as CUDA
    graphs): steps of the real world model through ``train_step`` (clip, fused AdamW, the loss meter
    reading every step's losses) end with the weights eager steps give."""
    import copy
    from types import SimpleNamespace

    from omegaconf import OmegaConf
    from test_visual_world_model import batch, make

    from training.loop.loss_meter import LossMeter
    from training.loop.trainer import CHECKED_STEPS, train_step

    def session(model, mode):
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-3, fused=True)
        return SimpleNamespace(cfg=OmegaConf.create({"training": {"batch_size": 2, "clip_grad": 1.0}}),
                               accelerator=Accelerator(), model=model, params=params, optimizer=opt,
                               scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0), step=0,
                               compiled=None if mode is None else torch.compile(model, mode=mode),
                               compile_checked=False, compile_mode=mode, compiled_steps=0)

    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    eager_model = make().cuda().train()
    graphed_model = copy.deepcopy(eager_model)
    torch.manual_seed(0)
    batches = [{k: v.cuda() for k, v in batch(eager_model, visual=False).items()} for _ in range(CHECKED_STEPS + 3)]
    runs = {}
    for name, model, mode in (("eager", eager_model, None), ("graphed", graphed_model, "reduce-overhead")):
        s, meter = session(model, mode), LossMeter()
        for b in batches:
            meter.add(train_step(s, b, 1, True, 0))
        runs[name] = (s, meter.flush(s.accelerator))
    s, means = runs["graphed"]
    assert s.compiled is not None and s.compile_checked and s.step == len(batches)
    assert not counters["inductor"]["cudagraph_skips"]  # replayed as CUDA graphs, not silently eager
    assert means["loss"] == pytest.approx(runs["eager"][1]["loss"], rel=1e-3)
    for (name, p), q in zip(eager_model.named_parameters(), graphed_model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-4, msg=name)
