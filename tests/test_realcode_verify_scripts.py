"""``benchmarks/realcode.py verify-scripts``: a fetched real-scripts tree against its manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

from benchmarks import realcode

FILES = {
    ("karpathy/nanoGPT", "train.py"): b"import torch\n",
    ("pytorch/examples", "mnist/main.py"): b"print('mnist')\n",
}


def _tree(root: Path) -> Path:
    """Write FILES under ``root/<owner>__<repo>/<path>`` and their manifest; return the manifest."""
    manifest = root / "manifest.tsv"
    lines = ["repo\tpath\tcommit\tsha256"]
    for (repo, path), data in FILES.items():
        target = root / "tree" / repo.replace("/", "__") / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        lines.append(f"{repo}\t{path}\t{'0' * 40}\t{hashlib.sha256(data).hexdigest()}")
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_an_exact_tree_verifies(tmp_path: Path) -> None:
    manifest = _tree(tmp_path)
    problems = realcode.verify_scripts(tmp_path / "tree", manifest)
    assert problems == {"missing": [], "changed": [], "unlisted": []}
    assert (
        realcode.main(["verify-scripts", str(tmp_path / "tree"), "--manifest", str(manifest)]) == 0
    )


def test_missing_changed_and_unlisted_files_are_named(tmp_path: Path, capsys) -> None:
    manifest = _tree(tmp_path)
    tree = tmp_path / "tree"
    (tree / "karpathy__nanoGPT" / "train.py").unlink()
    (tree / "pytorch__examples" / "mnist" / "main.py").write_bytes(b"print('edited')\n")
    (tree / "pytorch__examples" / "extra.py").write_bytes(b"")
    problems = realcode.verify_scripts(tree, manifest)
    assert problems == {
        "missing": ["karpathy__nanoGPT/train.py"],
        "changed": ["pytorch__examples/mnist/main.py"],
        "unlisted": ["pytorch__examples/extra.py"],
    }
    assert realcode.main(["verify-scripts", str(tree), "--manifest", str(manifest)]) == 1
    assert "missing: karpathy__nanoGPT/train.py" in capsys.readouterr().out


def test_the_committed_manifest_lists_distinct_files_with_commits_and_digests() -> None:
    rows = realcode.manifest_files(realcode.SCRIPTS_MANIFEST)
    lines = realcode.SCRIPTS_MANIFEST.read_text().splitlines()[1:]
    assert len(rows) == len(lines) >= 40
    for line in lines:
        repo, path, commit, digest = line.split("\t")
        assert repo.count("/") == 1 and path and len(commit) == 40 and len(digest) == 64
