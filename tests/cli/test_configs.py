"""Every shipped config parses and instantiates; generated configs are up to date."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lightning_ex2.lightning import MCMCSampler
from lightning_ex2.lightning.cli import build_cli

ROOT = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(p for p in ROOT.rglob("*.yaml") if "gan" not in p.parts)


def test_generated_configs_are_up_to_date():
    spec = importlib.util.spec_from_file_location("make_synthetic", ROOT / "make_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(check=True) == 0, "run: python configs/make_synthetic.py"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_instantiates(path):
    cli = build_cli(["--config", str(path)], run=False)
    assert isinstance(cli.model, MCMCSampler)
    assert cli.model.n_chains == cli.datamodule.n_chains
    assert cli.model.target.dim == cli.model.dim
