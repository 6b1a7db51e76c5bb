"""The standard footer of generated tables and the marked-block rewrite."""

from __future__ import annotations

import re

import pytest

from lightning_ex2.stamp import Stamp, mean_spread, replace_block, write_block


def test_footer_names_command_commit_date_cpu_threads_and_wall_time():
    foot = Stamp(["python", "scripts/x.py", "--seeds", "0", "1"], threads=1).footer()
    assert "`python scripts/x.py --seeds 0 1`" in foot
    assert re.search(r"at commit ([0-9a-f]{7,}(\+dirty)?|unknown)", foot)
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", foot)
    assert "1 torch thread(s)" in foot and "wall time" in foot and "cores)" in foot


def test_mean_spread_is_mean_and_sample_sd():
    assert mean_spread([1.0, 2.0, 3.0], ".2f") == "2.00 ± 1.00"
    assert mean_spread([4.0], ".1f") == "4.0"
    assert mean_spread([None, 3.0, 5.0], ".1f") == "4.0 ± 1.4"


def test_write_block_replaces_only_the_named_block(tmp_path):
    p = tmp_path / "page.md"
    p.write_text(
        "head\n<!-- a:start -->\nold a\n<!-- a:end -->\n<!-- b:start -->\nold b\n<!-- b:end -->\n"
    )
    write_block(p, "b", "new b\n")
    assert p.read_text() == (
        "head\n<!-- a:start -->\nold a\n<!-- a:end -->\n<!-- b:start -->\nnew b\n<!-- b:end -->\n"
    )
    with pytest.raises(ValueError, match="c:start"):
        replace_block(p.read_text(), "c", "x")


def test_default_command_is_the_script_or_module_as_typed(monkeypatch):
    from lightning_ex2 import stamp

    monkeypatch.setattr("sys.argv", [str(stamp.ROOT / "scripts" / "t.py"), "--seeds", "3"])
    assert Stamp().command == "python scripts/t.py --seeds 3"
    monkeypatch.setattr("sys.argv", [str(stamp.ROOT / "lightning_ex2" / "lightning" / "demo.py")])
    assert Stamp().command == "python -m lightning_ex2.lightning.demo"


def test_write_pages_skips_pages_without_the_block(tmp_path):
    from lightning_ex2.stamp import write_pages

    with_block, without = tmp_path / "a.md", tmp_path / "b.md"
    with_block.write_text("<!-- t:start -->\nold\n<!-- t:end -->\n")
    without.write_text("no markers\n")
    written = write_pages([with_block, without, tmp_path / "missing.md"], "t", "new")
    assert written == [with_block]
    assert with_block.read_text() == "<!-- t:start -->\nnew\n<!-- t:end -->\n"
    assert without.read_text() == "no markers\n"


def test_commit_is_dirty_for_code_changes_not_for_written_pages(tmp_path):
    import subprocess

    from lightning_ex2.stamp import _commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "page.md").write_text("<!-- t:start -->\n<!-- t:end -->\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = _commit(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{7,}", clean)
    write_block(tmp_path / "page.md", "t", "a table")
    assert _commit(tmp_path) == clean  # a page written by a table script
    (tmp_path / "code.py").write_text("x = 2\n")
    assert _commit(tmp_path) == clean + "+dirty"
