"""Two-process DDP on CPU (gloo): sharded chains, identical flows, merged outputs, resume.

Each run is a separate ``lightning-ex2`` process (the ``ddp`` strategy re-launches
its command line for rank 1) in its own process group, killed whole at the end, so
no child outlives the test. ``make test`` runs these in their own pytest process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.multiprocess.processes import kill_group

pytestmark = pytest.mark.ddp

TIMEOUT = 300

CONFIG = """
seed_everything: 0
trainer:
  max_steps: {steps}
  accelerator: cpu
  devices: {devices}
  strategy: {strategy}
  log_every_n_steps: 1
  enable_progress_bar: false
  logger:
    class_path: pytorch_lightning.loggers.TensorBoardLogger
    init_args: {{save_dir: "{root}/logs", name: run, version: "{version}"}}
  callbacks:
    - class_path: pytorch_lightning.callbacks.ModelCheckpoint
      init_args: {{dirpath: "{root}/ckpt_{version}", save_last: true, save_top_k: 0,
                  every_n_train_steps: 3}}
    - class_path: lightning_ex2.lightning.ChainDiagnostics
      init_args: {{every_n_epochs: 3, trace_length: 6}}
    - class_path: ddp_probe.DumpFlow
      init_args: {{folder: "{root}/flows_{version}"}}
model:
  class_path: {module}
  init_args:
    target:
      class_path: lightning_ex2.targets.Gaussian
      init_args: {{mean: [1.0, -1.0], cov: [[1.0, 0.3], [0.3, 0.5]]}}
    kernel: {kernel}
    seed: 0
data:
  n_chains: {n_chains}
"""

FLOW_KERNEL = """
      class_path: lightning_ex2.kernels.Ex2MCMC
      init_args:
        proposal:
          class_path: lightning_ex2.proposals.FlowProposal
          init_args: {dim: 2, n_blocks: 2, hidden_features: 16, scale: 2.0}
        n_particles: 8
        step_size: 0.3
        n_local_steps: 1
        target_accept: 0.574"""

MALA_KERNEL = """
      class_path: lightning_ex2.kernels.MALA
      init_args: {step_size: 0.3, target_accept: 0.574, mass_matrix: diagonal}"""

PROBE = '''
import os
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback


class DumpFlow(Callback):
    """Test probe: each rank writes its trainable weights and chain buffers at fit end."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def on_train_end(self, trainer, pl_module):
        self.folder.mkdir(parents=True, exist_ok=True)
        params = {n: p.detach().cpu() for n, p in pl_module.named_parameters()}
        torch.save({"params": params, "step_size": pl_module.step_size.cpu()},
                   self.folder / f"rank{trainer.global_rank}.pt")
'''


def write(
    root: Path, version: str, devices: int, module: str, kernel: str, n_chains: int, steps: int
) -> Path:
    (root / "ddp_probe.py").write_text(textwrap.dedent(PROBE))
    path = root / f"{version}.yaml"
    strategy = "ddp" if devices > 1 else "auto"
    path.write_text(
        CONFIG.format(
            root=root,
            version=version,
            devices=devices,
            module=module,
            kernel=kernel,
            n_chains=n_chains,
            steps=steps,
            strategy=strategy,
        )
    )
    return path


def run_cli(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning_ex2.lightning.cli", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, out[-4000:]
    return out


def _no_survivors(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_flex2mcmc_fit_sample_resume_two_processes(tmp_path):
    module = "lightning_ex2.lightning.FlEx2MCMC"
    cfg = write(tmp_path, "k2", 2, module, FLOW_KERNEL, n_chains=11, steps=6)
    run_cli(tmp_path, "fit", "--config", str(cfg))

    # the flow (trained with DDP-averaged gradients) is identical on both ranks
    r0 = torch.load(tmp_path / "flows_k2" / "rank0.pt")
    r1 = torch.load(tmp_path / "flows_k2" / "rank1.pt")
    assert r0["params"].keys() == r1["params"].keys() and r0["params"]
    for name in r0["params"]:
        torch.testing.assert_close(r0["params"][name], r1["params"][name], rtol=0, atol=0)
    torch.testing.assert_close(r0["step_size"], r1["step_size"], rtol=0, atol=0)

    # ChainDiagnostics gathered both ranks' chains (all 11 are tracked)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = next((tmp_path / "logs" / "run" / "k2").glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert "diagnostics/ess" in acc.Tags()["scalars"]

    # the checkpoint holds every rank's chains (rank 1 owns chains 6..10)
    ckpt = torch.load(tmp_path / "ckpt_k2" / "last.ckpt", weights_only=True)
    state = ckpt["state_dict"]
    assert bool(state["chain_ready"].all())
    assert ckpt["lightning_ex2_rng"].shape[0] == 2
    assert not torch.equal(state["state.x"][6:], torch.zeros(5, 2))

    # one merged output, all chains in order, written once by rank 0
    out = tmp_path / "samples_k2"
    run_cli(
        tmp_path,
        "sample",
        "--config",
        str(cfg),
        "--ckpt_path",
        str(tmp_path / "ckpt_k2" / "last.ckpt"),
        "--n_steps",
        "20",
        "--output_dir",
        str(out),
        "--progress",
        "false",
    )
    data = np.load(out / "samples.npz")
    assert data["samples"].shape == (11, 20, 2)
    assert list(data["chain_index"]) == list(range(11))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_chains"] == 11 and summary["world_size"] == 2
    names = sorted(p.name for p in out.iterdir())
    assert len([n for n in names if n.startswith("events.out.tfevents.")]) == 1  # the set's TB
    assert [n for n in names if not n.startswith("events.out.tfevents.")] == [
        "config.yaml",
        "manifest.json",
        "pair.png",
        "rank.png",
        "samples.nc",
        "samples.npz",
        "scatter.png",
        "summary.json",
        "trace.png",
    ]
    # samples.nc: both ranks' chains, per-draw stats in the same chain order as samples.npz
    from lightning_ex2.output.files import load_output_set

    loaded = load_output_set(out)
    nc = loaded.to_arviz()
    np.testing.assert_array_equal(nc.posterior["x"].values, data["samples"])
    np.testing.assert_allclose(
        loaded.sample_stats["accept_local"].mean(axis=1), data["accept_local"], rtol=1e-5
    )
    # sampling continued from the checkpointed chains of both ranks
    first = data["samples"][:, 0]
    assert np.abs(first - state["state.x"].numpy()).max() < 5.0

    # resume with the same number of devices, then with another one (warns, works)
    run_cli(
        tmp_path,
        "fit",
        "--config",
        str(cfg),
        "--trainer.max_steps",
        "9",
        "--ckpt_path",
        str(tmp_path / "ckpt_k2" / "last.ckpt"),
    )
    cfg1 = write(tmp_path, "k1", 1, module, FLOW_KERNEL, n_chains=11, steps=12)
    log = run_cli(
        tmp_path,
        "fit",
        "--config",
        str(cfg1),
        "--ckpt_path",
        str(tmp_path / "ckpt_k2" / "last.ckpt"),
    )
    assert "random streams are re-seeded" in log


def test_one_and_two_devices_agree_statistically(tmp_path):
    """MALA on a Gaussian, 64 chains: K=1 and K=2 estimate the same mean (z-test)."""
    module = "lightning_ex2.lightning.MCMCSampler"
    results = {}
    for devices in (1, 2):
        version = f"mala{devices}"
        cfg = write(tmp_path, version, devices, module, MALA_KERNEL, n_chains=64, steps=50)
        run_cli(tmp_path, "fit", "--config", str(cfg))
        out = tmp_path / f"samples_{version}"
        run_cli(
            tmp_path,
            "sample",
            "--config",
            str(cfg),
            "--ckpt_path",
            str(tmp_path / f"ckpt_{version}" / "last.ckpt"),
            "--n_steps",
            "150",
            "--output_dir",
            str(out),
            "--progress",
            "false",
        )
        results[devices] = (
            np.load(out / "samples.npz")["samples"],
            json.loads((out / "summary.json").read_text()),
        )
    truth = np.array([1.0, -1.0])
    from lightning_ex2.diagnostics import ess

    for devices, (samples, summary) in results.items():
        assert samples.shape == (64, 150, 2)
        assert summary["world_size"] == devices
        mcse = samples.reshape(-1, 2).std(0) / np.sqrt(ess(samples))
        z = np.abs(samples.reshape(-1, 2).mean(0) - truth) / mcse
        assert (z < 3.3).all(), (devices, z)
    # the two runs differ (other random streams) but agree within their MCSEs
    a, b = results[1][0], results[2][0]
    se = np.sqrt(a.reshape(-1, 2).var(0) / ess(a) + b.reshape(-1, 2).var(0) / ess(b))
    assert (np.abs(a.mean((0, 1)) - b.mean((0, 1))) / se < 3.3).all()
    assert not np.array_equal(a, b)
