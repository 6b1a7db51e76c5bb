"""Reading a local posteriordb clone: a posterior's data, Stan code and reference draws.

``posteriordb`` is the path of a clone of https://github.com/stan-dev/posteriordb
(its ``posterior_database/`` folder, or the repository root that holds it).
Nothing is downloaded. Small copies of a few posteriors ship as a test fixture in
the same layout (``tests/fixtures/posteriordb``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def database_root(posteriordb: str | Path) -> Path:
    """The ``posterior_database`` folder of a clone (or the folder itself)."""
    root = Path(posteriordb).expanduser()
    if (root / "posterior_database").is_dir():
        root = root / "posterior_database"
    if not (root / "posteriors").is_dir():
        raise FileNotFoundError(
            f"--posteriordb: {posteriordb} is not a posteriordb clone "
            "(no posterior_database/posteriors folder)"
        )
    return root


def _read_json(path: Path) -> Any:
    """A ``.json`` file or the single ``.json`` inside ``path.json.zip``."""
    if path.is_file():
        return json.loads(path.read_text())
    zipped = path.with_name(path.name + ".zip")
    if not zipped.is_file():
        raise FileNotFoundError(f"posteriordb: neither {path} nor {zipped} exists")
    with zipfile.ZipFile(zipped) as z:
        (member,) = [n for n in z.namelist() if n.endswith(".json")]
        return json.loads(z.read(member))


def posterior_info(name: str, posteriordb: str | Path) -> dict:
    """posteriordb's description of posterior ``name`` (model, data and reference names)."""
    return _read_json(database_root(posteriordb) / "posteriors" / f"{name}.json")


def load_data(name: str, posteriordb: str | Path) -> dict:
    """The data dict of posterior ``name``."""
    info = posterior_info(name, posteriordb)
    return _read_json(database_root(posteriordb) / "data" / "data" / f"{info['data_name']}.json")


def stan_code(name: str, posteriordb: str | Path) -> str:
    """The Stan program of posterior ``name``."""
    info = posterior_info(name, posteriordb)
    path = database_root(posteriordb) / "models" / "stan" / f"{info['model_name']}.stan"
    return path.read_text()


def reference_draws(name: str, posteriordb: str | Path) -> dict[str, np.ndarray]:
    """posteriordb's reference draws of ``name``: flat name -> ``(chain, draw)`` array."""
    info = posterior_info(name, posteriordb)
    ref = info.get("reference_posterior_name")
    if not ref:
        raise FileNotFoundError(f"posteriordb: {name} has no reference posterior")
    chains = _read_json(
        database_root(posteriordb) / "reference_posteriors" / "draws" / "draws" / f"{ref}.json"
    )
    return {k: np.array([c[k] for c in chains], dtype=np.float64) for k in chains[0]}
