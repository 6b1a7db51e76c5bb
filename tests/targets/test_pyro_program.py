"""PyroProgram: a Pyro model named in a config (function by path, data from a file),
from the command line to ArviZ, and its one-line refusals."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pyro")

from lightning_ex2.checks import model_spec
from lightning_ex2.kernels import MALA
from lightning_ex2.lightning import MCMCSampler
from lightning_ex2.output.files import load_output_set
from lightning_ex2.targets import PyroModelError, PyroProgram, posteriordb
from lightning_ex2.targets.pyro_program import read_data
from tests.cli import test_safety

MODEL = "configs/pyro/eight_schools.py:model"
DATA = "configs/pyro/eight_schools.json"


#: ``lightning-ex2 ARGS`` in-process, its exit status (the command-line tests' fixture)
main = test_safety.main

CONFIG = """
seed_everything: 0
trainer:
  max_steps: {steps}
  accelerator: cpu
  devices: 1
  enable_progress_bar: false
  logger:
    class_path: pytorch_lightning.loggers.TensorBoardLogger
    init_args: {{save_dir: "{root}", name: run, version: fit}}
  callbacks:
    - class_path: pytorch_lightning.callbacks.ModelCheckpoint
      init_args: {{save_last: true, save_top_k: 0, every_n_train_steps: {steps}}}
model:
  class_path: lightning_ex2.lightning.MCMCSampler
  init_args:
    target:
      class_path: lightning_ex2.targets.PyroProgram
      init_args: {{model: "{model}", data: "{data}", verbose: false}}
    kernel:
      class_path: lightning_ex2.kernels.HMC
      init_args: {{n_leapfrog: 5}}
    seed: 0
data:
  n_chains: 8
"""


def _config(tmp_path, model=MODEL, data=DATA, steps=30):
    path = tmp_path / "pyro.yaml"
    path.write_text(CONFIG.format(root=tmp_path, steps=steps, model=model, data=data))
    return path


def test_fit_and_sample_from_the_command_line_write_pyro_s_names(main, tmp_path):
    """``fit`` then ``sample`` of the shipped example config's model: ``samples.nc``
    holds Pyro's sites with their shapes, equal to the target's ``constrain`` of the
    unconstrained draws ``samples.npz`` keeps."""
    config = _config(tmp_path)
    assert main("fit", "--config", config) == 0
    ckpt = tmp_path / "run" / "fit" / "checkpoints" / "last.ckpt"
    out = tmp_path / "sample"
    warnings.simplefilter("ignore", RuntimeWarning)  # 20 draws do not converge
    assert main("sample", "--config", config, "--ckpt_path", ckpt, "--output_dir", out,
                "--n_steps", 20, "--progress", "false") == 0  # fmt: skip
    data = load_output_set(out)
    idata = data.to_arviz()
    post = idata.posterior
    assert set(post.data_vars) == {"mu", "tau", "theta_trans"}
    assert post["theta_trans"].shape == (8, 20, 8) and post["tau"].shape == (8, 20)
    target = PyroProgram(MODEL, DATA, verbose=False)
    want = target.constrain(torch.as_tensor(data.samples))
    np.testing.assert_allclose(post["tau"].values, want["tau"].numpy(), rtol=1e-12)
    assert data.samples.dtype == np.float64  # the data's dtype runs the chains


def test_the_example_model_equals_the_torch_port_up_to_a_constant():
    """The shipped example (written as a user would) against the posteriordb port,
    whose log density is checked against Stan's: one constant apart, same gradients.
    The example orders its sites mu, tau, theta_trans; the port theta_trans, mu, tau."""
    target = PyroProgram(MODEL, DATA, verbose=False)
    assert target.evaluation == "plate"
    assert [s.name for s in target.sites] == ["mu", "tau", "theta_trans"]
    port = posteriordb.load("eight_schools-eight_schools_noncentered", "tests/fixtures/posteriordb")
    x = torch.randn(16, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x_port = torch.cat([x[:, 2:], x[:, :2]], -1)  # theta_trans first
    diff = target.log_prob(x) - port.log_prob(x_port)
    torch.testing.assert_close(diff, diff[:1].expand(16), rtol=0, atol=1e-9)


def test_read_data_conversions(tmp_path):
    file = tmp_path / "d.json"
    file.write_text(json.dumps({"N": 3, "flag": True, "y": [1, 2, 3], "g": [0, 1, 1],
                                "X": [[0.5, 1.0], [2.0, 3.0]]}))  # fmt: skip
    data = read_data(file, torch.float32, integers=("g",))
    assert data["N"] == 3 and type(data["N"]) is int and data["flag"] is True
    assert data["y"].dtype == torch.float32 and data["y"].tolist() == [1.0, 2.0, 3.0]
    assert data["g"].dtype == torch.int64 and data["X"].shape == (2, 2)
    npz = tmp_path / "d.npz"
    np.savez(npz, y=np.arange(3.0), N=np.int64(3))
    back = read_data(npz)
    assert back["N"] == 3 and back["y"].dtype == torch.float64


@pytest.mark.parametrize(
    ("model", "data", "kw", "words"),
    [
        ("configs/pyro/none.py:model", DATA, {}, "model: no file configs/pyro/none.py"),
        ("configs/pyro/eight_schools.py:nothing", DATA, {}, "has no function 'nothing'"),
        ("no_such_package.models:model", DATA, {}, "model: cannot import 'no_such_package.models'"),
        ("model", DATA, {}, "is not 'package.module:function'"),
        (MODEL, "missing.json", {}, "data: no file missing.json"),
        (MODEL, "{extra}", {}, "data: 'K' not an argument of"),
        (MODEL, "{short}", {}, "needs 'sigma', not in the file"),
        (MODEL, "{bad}", {}, "cannot be read"),
        (MODEL, "{text}", {}, "data: entry 'sigma' is not numeric"),
        (MODEL, DATA, {"integers": ["school"]}, "integers: 'school' not in"),
        (MODEL, DATA, {"integers": ["sigma"], "path": "loop"}, None),
        (MODEL, DATA, {"dtype": "float16"}, "dtype: must be float32 or float64"),
    ],
)
def test_refusals_are_one_line_naming_the_field(tmp_path, model, data, kw, words):
    base = json.loads(Path(DATA).read_text())
    files = {
        "extra": {**base, "K": 2},
        "short": {k: v for k, v in base.items() if k != "sigma"},
        "text": {**base, "sigma": ["a"] * 8},
    }
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    (tmp_path / "bad.json").write_text("{not json")
    data = data.format(**{k: tmp_path / f"{k}.json" for k in (*files, "bad")})
    if words is None:  # integers on an entry the model treats as real: a working model
        assert PyroProgram(model, data, verbose=False, **kw).kwargs["sigma"].dtype == torch.int64
        return
    with pytest.raises(PyroModelError) as err:
        PyroProgram(model, data, verbose=False, **kw)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_bad_model_from_the_command_line_is_one_line_exit_2(main, tmp_path, capsys):
    config = _config(tmp_path, model="configs/pyro/eight_schools.py:nothing")
    assert main("fit", "--config", config) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no function 'nothing'" in err[0], err
    assert not (tmp_path / "run").exists()  # nothing written before the refusal


def test_a_pickled_npz_is_refused(tmp_path):
    file = tmp_path / "d.npz"
    np.savez(file, y=np.array([{"a": 1}], dtype=object))
    with pytest.raises(PyroModelError, match="cannot be read"):
        read_data(file)


def test_checkpoint_identity_covers_the_model_source_and_the_data(tmp_path):
    """Another data file or an edited model changes the settings a checkpoint records,
    so a resume on them is refused like any other change of settings."""
    shutil.copy(DATA, tmp_path / "d.json")
    model_file = tmp_path / "m.py"
    model_file.write_text(Path("configs/pyro/eight_schools.py").read_text())

    def spec():
        target = PyroProgram(f"{model_file}:model", str(tmp_path / "d.json"), verbose=False)
        return model_spec(MCMCSampler(target, MALA(), n_chains=2))

    first = spec()
    assert first["target.data_digest"] != repr("") and "target.model_source" in first
    data = json.loads((tmp_path / "d.json").read_text())
    data["y"][0] = 27
    (tmp_path / "d.json").write_text(json.dumps(data))
    second = spec()
    assert second["target.data_digest"] != first["target.data_digest"]
    assert second["target.model_source"] == first["target.model_source"]
    model_file.write_text(
        model_file.read_text().replace("dist.HalfCauchy(5.0)", "dist.HalfCauchy(2.5)")
    )
    assert spec()["target.model_source"] != first["target.model_source"]  # read afresh


def test_the_shipped_config_runs(main, tmp_path):
    """``configs/pyro/eight_schools_hmc.yaml`` as documented, shortened: ``fit`` writes
    its checkpoint where the config's ``sample`` line reads it."""
    assert main("fit", "--config", "configs/pyro/eight_schools_hmc.yaml",
                "--trainer.max_steps", 4, "--trainer.logger.init_args.save_dir", tmp_path,
                "--trainer.enable_progress_bar", "false", "--data.n_chains", 4) == 0  # fmt: skip
    assert (tmp_path / "pyro" / "eight_schools" / "fit" / "checkpoints" / "last.ckpt").is_file()
