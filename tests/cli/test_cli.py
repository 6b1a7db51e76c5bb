"""The ``lightning-ex2`` command line: fit, sample, configs, errors, TensorBoard."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_ex2.lightning import cli


@pytest.fixture
def main(monkeypatch):
    """Run ``lightning-ex2 ARGS`` in-process (sys.argv patched, as a user would type it)."""

    def run(args):
        monkeypatch.setattr("sys.argv", ["lightning-ex2", *args])
        return cli.main()

    return run


CONFIG = """
seed_everything: 0
trainer:
  max_steps: 12
  accelerator: cpu
  devices: 1
  log_every_n_steps: 1
  enable_progress_bar: false
  logger:
    class_path: pytorch_lightning.loggers.TensorBoardLogger
    init_args: {{save_dir: "{root}", name: run, version: fit}}
  callbacks:
    - class_path: pytorch_lightning.callbacks.ModelCheckpoint
      init_args: {{save_last: true, save_top_k: 0, every_n_train_steps: 6}}
    - class_path: lightning_ex2.lightning.ChainDiagnostics
      init_args: {{every_n_epochs: 5, trace_length: 10}}
model:
  class_path: lightning_ex2.lightning.FlEx2MCMC
  init_args:
    target:
      class_path: {target}
      init_args: {{dim: 2}}
    kernel:
      class_path: lightning_ex2.kernels.Ex2MCMC
      init_args:
        proposal:
          class_path: lightning_ex2.proposals.FlowProposal
          init_args: {{dim: 2, n_blocks: 2, hidden_features: 16, scale: 3.0}}
        n_particles: {n_particles}
        step_size: 0.3
        n_local_steps: 2
        target_accept: 0.574
    backward_kl_weight: 0.1
data:
  n_chains: 16
"""


def write_config(tmp_path, target="lightning_ex2.targets.Funnel", n_particles=8):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(root=tmp_path / "logs", target=target, n_particles=n_particles))
    return path


def scalars(folder):
    tags = set()
    for events in folder.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"]) | set(acc.Tags()["images"])
    return tags


def test_fit_then_sample(tmp_path, main, monkeypatch):
    import lightning_ex2.output.figures as figures

    titles = []
    scatter = figures.scatter_figure

    def record(*args, **kwargs):
        titles.append(kwargs.get("title"))
        return scatter(*args, **kwargs)

    monkeypatch.setattr(figures, "scatter_figure", record)
    cfg = write_config(tmp_path)
    main(["fit", "--config", str(cfg)])
    run = tmp_path / "logs" / "run" / "fit"
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    out = tmp_path / "out"
    main(
        [
            "sample",
            "--config",
            str(cfg),
            "--ckpt_path",
            str(ckpt),
            "--n_steps",
            "25",
            "--output_dir",
            str(out),
            "--progress",
            "false",
        ]
    )
    data = np.load(out / "samples.npz")
    assert data["samples"].shape == (16, 25, 2)
    assert data["accept_global"].shape == (16,) and data["accept_local"].shape == (16,)
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "ess_bulk_mean",
        "rhat_max",
        "accept_global_mean",
        "accept_local_mean",
        "n_chains",
        "n_steps",
        "wall_seconds",
        "emd",
        "emd_exact",
    ):
        assert summary[key] is not None, key
    assert summary["n_chains"] == 16 and summary["n_steps"] == 25
    assert summary["step_size"] > 0 and "step_size_mean" not in summary  # given once
    assert (out / "scatter.png").is_file() and (out / "trace.png").is_file()
    assert titles[-1] == "FlEx2MCMC on Funnel"  # the sampler that ran, not its kernel class
    tags = scalars(run)
    for tag in (
        "accept/global",
        "accept/local",
        "step_size",
        "loss/forward_kl",
        "loss/backward_kl",
        "isir/particle_ess",
        "diagnostics/ess",
        "diagnostics/rhat",
        "diagnostics/emd",
        "chains/scatter",
        "chains/trace",
    ):
        assert tag in tags, tag
    # sample's own events are part of its output set (it never logs into the fit run)
    sample_tags = scalars(out)
    for tag in ("sample/ess_bulk_mean", "sample/emd", "sample/scatter", "sample/rank"):
        assert tag in sample_tags and tag not in tags, tag


def test_print_config(tmp_path, main, capsys):
    cfg = write_config(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(cfg), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["kernel"]["init_args"]["n_particles"] == 8
    # linked to model.n_chains, so printed once, under data
    assert printed["data"]["init_args"]["n_chains"] == 16


def test_unknown_key_is_named(tmp_path, main, capsys):
    cfg = write_config(tmp_path)
    text = cfg.read_text().replace("n_local_steps: 2", "n_local_stepz: 2")
    cfg.write_text(text)
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(cfg)])
    assert "n_local_stepz" in capsys.readouterr().err


def test_bad_value_is_named_without_traceback(tmp_path, main, capsys):
    cfg = write_config(tmp_path, n_particles=1)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(cfg)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "n_particles" in err and "Traceback" not in err


def test_dim_mismatch_is_named(tmp_path, main, capsys):
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("init_args: {dim: 2}", "init_args: {dim: 3}", 1))
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(cfg)])
    assert "model.kernel.proposal.dim" in capsys.readouterr().err


def test_user_target_from_pythonpath(tmp_path, main, monkeypatch):
    (tmp_path / "my_targets.py").write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        class Ring(nn.Module):
            def __init__(self, dim: int = 2, radius: float = 3.0):
                super().__init__()
                self.dim = dim
                self.radius = radius

            def log_prob(self, x):
                return -0.5 * ((x.norm(dim=-1) - self.radius) / 0.3) ** 2
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = write_config(tmp_path, target="my_targets.Ring")
    main(["fit", "--config", str(cfg), "--trainer.max_steps", "3"])
    out = tmp_path / "out"
    main(
        [
            "sample",
            "--config",
            str(cfg),
            "--n_steps",
            "10",
            "--output_dir",
            str(out),
            "--progress",
            "false",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert "emd" not in summary  # no exact sampler
    radius = np.linalg.norm(np.load(out / "samples.npz")["samples"], axis=-1)
    assert abs(radius.mean() - 3.0) < 0.5


def test_float64_target_runs_float64_chains(tmp_path, main, monkeypatch):
    """A target whose tensors are float64 (its log_prob computes in float64, as a port of
    a real posterior does): ``fit`` and ``sample`` run the chains and the flow in float64."""
    (tmp_path / "my_targets64.py").write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        class Gauss64(nn.Module):
            def __init__(self, dim: int = 2):
                super().__init__()
                self.dim = dim
                self.register_buffer("mean", torch.full((dim,), 0.5, dtype=torch.float64))

            def log_prob(self, x):
                return -0.5 * (x.to(self.mean) - self.mean).square().sum(-1)
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = write_config(tmp_path, target="my_targets64.Gauss64")
    main(["fit", "--config", str(cfg), "--trainer.max_steps", "3"])
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert state["state.x"].dtype == torch.float64
    assert state["kernel.isir.proposal.loc"].dtype == torch.float64
    out = tmp_path / "out"
    main(["sample", "--config", str(cfg), "--ckpt_path", str(ckpt), "--n_steps", "5",
          "--output_dir", str(out), "--progress", "false"])  # fmt: skip
    assert np.load(out / "samples.npz")["samples"].shape == (16, 5, 2)


def test_validate_and_test_score_the_chains(tmp_path, main, capsys):
    cfg = write_config(tmp_path)
    main(["fit", "--config", str(cfg), "--trainer.max_steps", "4"])
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    for command in ("validate", "test"):
        main([command, "--config", str(cfg), "--ckpt_path", str(ckpt)])
        out = capsys.readouterr().out
        stage = "val" if command == "validate" else "test"
        for key in ("log_prob", "particle_ess", "accept_global"):
            assert f"{stage}/{key}" in out, out


HELP_COMMANDS = [
    ["--help"],
    *([name, "--help"] for name in cli.Ex2CLI.subcommands()),
    ["fit", "--model.help", "lightning_ex2.lightning.FlEx2MCMC"],
    ["sample", "--model.help", "lightning_ex2.lightning.MCMCSampler"],
    ["fit", "--trainer.callbacks.help", "lightning_ex2.lightning.ChainDiagnostics"],
]
#: reST a terminal shows raw: a role (:class:`x`, :py:meth:`x`) or an inline literal (``x``)
REST_MARKUP = r"(?::[a-z_]+)+:`|``"


@pytest.mark.parametrize("args", HELP_COMMANDS, ids=" ".join)
def test_help_shows_no_rest_markup(args, main, capsys):
    import re

    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage:" in text
    found = re.findall(rf".*(?:{REST_MARKUP}).*", text)
    assert not found, "\n".join(found[:5])


def test_help_states_the_commands_defaults_not_the_docstrings(main, capsys):
    """Lightning's docstring says "Default: 50." for log_every_n_steps; the command's is 10."""
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "How often to log within steps. (type: Optional[int], default: 10)" in text
    assert "Default: 50" not in text


def test_plain_text_keeps_the_words_of_rest_markup():
    assert cli.plain_text(":py:class:`~a.b.C` and ``x = 1``") == "C and x = 1"
    assert cli.plain_text(":ref:`the guide <guide-label>`; :func:`f`") == "the guide; f"
    assert cli.plain_text("a `single` backtick stays") == "a `single` backtick stays"


def test_cli_page_states_the_logging_interval_the_command_uses():
    """docs/cli.md's TensorBoard section: the step scalars are written every
    ``log_every_n_steps`` steps (the command's default), not every step."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    section = " ".join(page.split("## TensorBoard", 1)[1].split("\n## ", 1)[0].split())
    every = cli.CLI_TRAINER_DEFAULTS["log_every_n_steps"]
    assert every > 1
    assert f"every `trainer.log_every_n_steps` steps ({every} unless the config sets it)" in section
    assert "per step" not in section
