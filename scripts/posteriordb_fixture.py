"""Copy the ports' posteriors from a posteriordb clone into the test fixture, cut small.

For each port whose zipped data file is under ``--max-kb``, the fixture
(``tests/fixtures/posteriordb``, posteriordb's own layout) gets its posterior
description, data, Stan program and the first ``--chains`` x ``--draws`` of its
reference draws (zipped). Larger posteriors are left out and listed: the Stan check
covers them on a full clone (``scripts/posteriordb_stan_check.py --recorded``).

    python scripts/posteriordb_fixture.py --posteriordb ~/posteriordb
"""

from __future__ import annotations

import argparse
import json
import shutil
import zipfile
from pathlib import Path

from lightning_ex2.targets import posteriordb as pdb
from lightning_ex2.targets.posteriordb.database import database_root

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "posteriordb"


def _zip_json(path: Path, payload: object) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(path.name.removesuffix(".zip"), json.dumps(payload))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posteriordb", required=True)
    parser.add_argument("--out", type=Path, default=FIXTURE)
    parser.add_argument("--max-kb", type=float, default=200.0)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=100)
    args = parser.parse_args(argv)
    src = database_root(args.posteriordb)
    for sub in ("posteriors", "data/data", "models/stan", "reference_posteriors/draws/draws"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    for name in pdb.ports():
        info = pdb.posterior_info(name, args.posteriordb)
        data = src / "data" / "data" / f"{info['data_name']}.json.zip"
        if data.stat().st_size > args.max_kb * 1024:
            print(f"{name}: data {data.stat().st_size / 1024:.0f} KB zipped: left out")
            continue
        shutil.copy(src / "posteriors" / f"{name}.json", args.out / "posteriors")
        shutil.copy(data, args.out / "data" / "data")
        model = f"{info['model_name']}.stan"
        shutil.copy(src / "models" / "stan" / model, args.out / "models" / "stan")
        ref = info.get("reference_posterior_name")
        if ref:
            with zipfile.ZipFile(src / "reference_posteriors/draws/draws" / f"{ref}.json.zip") as z:
                (member,) = [n for n in z.namelist() if n.endswith(".json")]
                chains = json.loads(z.read(member))
            cut = [{k: v[: args.draws] for k, v in c.items()} for c in chains[: args.chains]]
            _zip_json(args.out / "reference_posteriors/draws/draws" / f"{ref}.json.zip", cut)
        print(f"{name}: copied")


if __name__ == "__main__":
    main()
