"""The README's multi-node torchrun recipe, run as 2 nodes x 1 process on the loopback
interface (gloo): ``fit`` then ``sample``, one merged output, no process left.

Each node is a ``torchrun`` process in its own process group, killed whole at the
end. ``make test`` runs these (marked ``ddp``) in their own pytest process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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
  max_steps: 10
  enable_progress_bar: false
  logger:
    class_path: pytorch_lightning.loggers.TensorBoardLogger
    init_args: {save_dir: logs, name: run, version: fit}
  callbacks:
    - class_path: pytorch_lightning.callbacks.ModelCheckpoint
      init_args: {save_last: true, save_top_k: 0, every_n_train_steps: 5}
model:
  class_path: lightning_ex2.lightning.MCMCSampler
  init_args:
    target:
      class_path: lightning_ex2.targets.Gaussian
      init_args: {mean: [1.0, -1.0], cov: [[1.0, 0.3], [0.3, 0.5]]}
    kernel:
      class_path: lightning_ex2.kernels.MALA
      init_args: {step_size: 0.3, target_accept: 0.574}
data:
  n_chains: 11
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_two_nodes(root: Path, *args: str) -> None:
    """The README's command with --nnodes 2 --nproc_per_node 1 on 127.0.0.1."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    port = str(free_port())
    nodes = []
    try:
        for rank in (0, 1):
            log = open(root / f"node{rank}.log", "w")  # noqa: SIM115 - the child keeps it
            nodes.append(
                subprocess.Popen(
                    [
                        sys.executable, "-m", "torch.distributed.run",
                        "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank),
                        "--master_addr", "127.0.0.1", "--master_port", port,
                        "-m", "lightning_ex2.lightning.cli", *args,
                        "--trainer.accelerator", "cpu", "--trainer.devices", "1",
                        "--trainer.num_nodes", "2", "--trainer.strategy", "ddp",
                    ],
                    cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )  # fmt: skip
            log.close()
        for node in nodes:
            node.wait(timeout=TIMEOUT)
    finally:
        for node in nodes:
            kill_group(node)
    for rank, node in enumerate(nodes):
        assert node.returncode == 0, (root / f"node{rank}.log").read_text()[-4000:]


def test_torchrun_two_nodes_fit_then_sample(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(CONFIG)
    torchrun_two_nodes(tmp_path, "fit", "--config", str(cfg))
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    assert state["global_step"] == 10
    assert state["lightning_ex2_rng"].shape[0] == 2  # both ranks' streams
    assert bool(state["state_dict"]["chain_ready"].all())  # both ranks' chains

    out = tmp_path / "samples"
    torchrun_two_nodes(tmp_path, "sample", "--config", str(cfg), "--ckpt_path", str(ckpt),
                       "--n_steps", "20", "--output_dir", str(out), "--progress", "false")  # fmt: skip
    data = np.load(out / "samples.npz")
    assert data["samples"].shape == (11, 20, 2)
    assert list(data["chain_index"]) == list(range(11))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["n_chains"] == 11 and summary["complete"]
    # each chain continued from its checkpointed state (rank 1 owns chains 6..10)
    first = data["samples"][:, 0]
    assert np.abs(first - state["state_dict"]["state.x"].numpy()).max() < 5.0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
