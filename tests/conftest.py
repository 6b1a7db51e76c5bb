import math
import os
from pathlib import Path

import pytest
import torch
from scipy import stats

from tests.fashion_data import synthetic, write_idx

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest worker per core: one torch thread each, in the worker
    # and in the commands it launches (more threads than cores spin-wait for each other;
    # tests/test_random.py still checks 1 against 2 threads in-process)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def z_quantile(p: float = 0.01, n_tests: int = 1) -> float:
    """Two-sided normal quantile at level ``p`` with a Bonferroni correction."""
    return float(stats.norm.ppf(1 - p / (2 * n_tests)))


# ------------------------------------------------ device-parametrised tests (make gpu-check)
def pytest_addoption(parser):
    parser.addoption(
        "--device",
        default=os.environ.get("LX_TEST_DEVICE", "cpu"),
        help="device of the tests that take the `device` fixture: cpu (default), cuda, "
        "cuda:1, ... (env LX_TEST_DEVICE); `make gpu-check` runs them with cuda",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "device: takes the `device` fixture (select: -m device)")
    dev = config.getoption("--device")
    try:
        parsed = torch.device(dev)
    except RuntimeError as err:
        raise pytest.UsageError(f"--device: {err}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {dev}: torch sees no CUDA device")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.device)


@pytest.fixture
def device(request) -> torch.device:
    """The device of a device-parametrised test (``--device``, default cpu)."""
    return torch.device(request.config.getoption("--device"))


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(1234)
    yield


def mcse_z(draws: torch.Tensor, truth: torch.Tensor, ess) -> torch.Tensor:
    """|mean - truth| / (sd / sqrt(ESS)) per coordinate for draws ``[C, T, D]``."""
    flat = draws.reshape(-1, draws.shape[-1]).double()
    sd = flat.std(0)
    e = torch.as_tensor(ess(draws.detach().cpu().double().numpy()), dtype=torch.float64)
    return (flat.mean(0) - truth.double()).abs() / (sd / e.sqrt())


# ------------------------------------------------ synthetic Fashion-MNIST files
@pytest.fixture
def fashion_dir(tmp_path: Path) -> Path:
    x, y = synthetic(96)
    write_idx(tmp_path, "train", x, y)
    x, y = synthetic(40, seed=1)
    write_idx(tmp_path, "t10k", x, y)
    return tmp_path


__all__ = ["math", "mcse_z", "z_quantile"]


@pytest.fixture(autouse=True)
def _no_debug_env_leak(monkeypatch):
    """``cli.main(..., "--debug")`` sets ``LIGHTNING_EX2_DEBUG`` for the processes it
    starts; undo it after each test so later tests see the default (one-line errors)."""
    monkeypatch.delenv("LIGHTNING_EX2_DEBUG", raising=False)
