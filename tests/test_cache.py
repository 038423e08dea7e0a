"""The incremental cache of ``ml-switcheroo convert`` (``ml_switcheroo.app.cache``).

Hits are proven by poisoning: a cached result is replaced by a wrong one (with a valid header),
so a run that reports the wrong answer has read it from the cache; an invalidation test makes
the same poisoned entry and checks that the run after the change ignores it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ml_switcheroo.app import cache
from tests.test_convert_cli import PLAIN, SGD, TRAIN, run, summary_numbers, tree

REPO = Path(__file__).resolve().parent.parent
GENERATED = "# @gen" + "erated\nimport torch\nopt = torch.optim.SGD(params, lr=0.1)\n"
# Passes both pre-filter stages (a member `backward` beside a parameter annotated with its type)
# and does not change (the member is read on another, untyped parameter).
CANDIDATE = "import torch\n\n\ndef build(x: torch.Tensor, loss):\n    return loss.backward\n"
BROKEN = "import torch\nopt = torch.optim.SGD(\n"
LAYOUT = {
    "a.py": TRAIN,
    "b.py": SGD,
    "plain.py": PLAIN,
    "gen.py": GENERATED,
    "broken.py": BROKEN,
    "pkg/c.py": TRAIN.replace("0.01", "0.02"),
}


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as old enough to be known by their stat."""
    monkeypatch.setattr(cache, "RACY_NS", -(10**18))


def check(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "--check", "--cache", str(root / ".c"), *extra, "src", cwd=root)


def report_of(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> tuple[int, str]:
    """Exit code and JSON report of a --check run over ``root/src`` with ``extra`` options."""
    code, _, _ = run(capsys, "--check", *extra, "--report", "r.json", "src", cwd=root)
    return code, (root / "r.json").read_text(encoding="utf-8")


def open_run_cache(root: Path, *semantic_maps: str, **options: object) -> cache.Cache:
    """The cache a run over ``root`` with these options uses."""
    full = {"semantic_map": list(semantic_maps), "exact": False, "steps_per_epoch": None}
    full.update(options)
    maps = [str(root / m) for m in semantic_maps]
    found = cache.open_cache(str(root / ".c"), maps, full, False)
    assert found is not None
    return found


def poison(run_cache: cache.Cache, source: Path) -> None:
    """Store "nothing to change, nothing found" as the result of ``source``'s current bytes."""
    sha = cache.content_sha(source.read_bytes())
    run_cache.store_result(str(source), sha, {"changed": False, "records": []})


# --------------------------------------------------------------------------- hits


def test_a_second_check_run_gives_the_report_of_an_uncached_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", LAYOUT)
    _, uncached = report_of(capsys, tmp_path, "--no-cache")
    _, first = report_of(capsys, tmp_path, "--cache", ".c")
    code, second = report_of(capsys, tmp_path, "--cache", ".c")
    assert code == 3  # broken.py, from the cache
    assert first == second == uncached


def test_a_second_check_run_takes_every_candidate_from_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", LAYOUT)
    check(capsys, tmp_path)
    code, _, err = check(capsys, tmp_path)
    numbers = summary_numbers(err)
    assert numbers["from the cache"] == numbers["parsed"] == 4  # a, b, pkg/c, broken
    assert "would convert src/a.py" in err and code == 3


def test_the_default_check_cache_lives_under_xdg_cache_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    run(capsys, "--check", "src", cwd=tmp_path)
    assert list((Path(os.environ["XDG_CACHE_HOME"]) / "ml-switcheroo" / "v1").iterdir())


def test_diff_and_in_place_runs_use_no_cache_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    run(capsys, "src", cwd=tmp_path)
    run(capsys, "-i", "src", cwd=tmp_path)
    run(capsys, "--check", "--no-cache", "src", cwd=tmp_path)
    assert not (Path(os.environ["XDG_CACHE_HOME"]) / "ml-switcheroo").exists()


def test_a_second_check_run_over_an_unchanged_tree_opens_no_source(tmp_path: Path) -> None:
    """The cache trusts each file's own stat, and the digest of the other files a file's facts
    come from (issue 12) is the repository record's, whose files have their recorded stats:
    no source is read, and the cached results give the answer (exit 3: broken.py)."""
    assert second_run_opens(tmp_path, LAYOUT) == ("3", 0)


SECOND_RUN_OPENS = textwrap.dedent(
    """
    import sys
    from ml_switcheroo import convert
    from ml_switcheroo.app import cache
    cache.RACY_NS = -(10**18)
    args = ["--check", "-j", "1", "-q", "--cache", ".c", "src"]
    convert.main(args)
    exec(sys.argv[1])  # what happens between the two runs
    opened = []
    def audit(event, data):
        if event == "open" and str(data[0]).endswith(".py") and "/src/" in str(data[0]):
            opened.append(str(data[0]).rpartition("/src/")[2])
    sys.addaudithook(audit)
    code = convert.main(args)
    print(json.dumps([code, opened]))
    """
).replace("import sys", "import json, sys")


def second_run_opened(
    tmp_path: Path, layout: dict[str, str], between: str = ""
) -> tuple[str, list[str]]:
    """The exit code of a second cached ``--check`` run over ``tmp_path/src`` and the sources
    it opened (relative to ``src``); ``between``: Python run in ``tmp_path`` after the first."""
    tree(tmp_path / "src", layout)
    result = subprocess.run(
        [sys.executable, "-c", SECOND_RUN_OPENS, between],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    code, opened = json.loads(result.stdout.splitlines()[-1])
    return str(code), opened


def second_run_opens(tmp_path: Path, layout: dict[str, str]) -> tuple[str, int]:
    """The exit code of a second cached ``--check`` run and how many sources it opened."""
    code, opened = second_run_opened(tmp_path, layout)
    return code, len(opened)


def test_a_second_run_over_files_without_torch_or_steps_opens_none(tmp_path: Path) -> None:
    """Pre-filtered files whose bytes call no `.step`/`.zero_grad` cannot change through other
    files: the cache says so, and the second run asks no repository index about them."""
    layout = {f"m{i}.py": PLAIN + f"\nVALUE_{i} = {i}\n" for i in range(5)}
    assert second_run_opens(tmp_path, layout) == ("0", 0)


def test_a_pre_filtered_file_that_steps_is_answered_by_the_repository_record(
    tmp_path: Path,
) -> None:
    """A pre-filtered file calling `.step()` may change through another file: it is asked
    again, and the repository record answers while no file of the repository changed (that
    an edit elsewhere is seen: ``tests/test_cache_repository.py``)."""
    layout = {"engine.py": "def train(opt, loss):\n    loss.backward()\n    opt.step()\n"}
    assert second_run_opens(tmp_path, layout) == ("0", 0)


def test_a_first_run_looks_up_no_result_for_a_file_the_ast_stage_drops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result's key digests the files the repository links the file to (costly on a big
    repository): it is computed for the files both stages keep, not for those the byte filter
    keeps and the `ast` stage drops."""
    dropped = "import torch\nnet = Net(optimizer=torch.optim.Adam)\n"  # named, never called
    tree(tmp_path / "src", {"a.py": TRAIN, "dropped.py": dropped})
    looked_up: list[str] = []
    real = cache.Cache.result
    monkeypatch.setattr(
        cache.Cache,
        "result",
        lambda self, path, sha: looked_up.append(path) or real(self, path, sha),
    )
    assert check(capsys, tmp_path)[0] == 1
    assert sorted(os.path.basename(path) for path in looked_up) == ["a.py"]


def test_a_poisoned_result_is_replayed_when_nothing_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    assert check(capsys, tmp_path)[0] == 1
    poison(open_run_cache(tmp_path), tmp_path / "src" / "a.py")
    assert check(capsys, tmp_path)[0] == 0  # the cache answered: the proof that it is read


# --------------------------------------------------------------------------- invalidation


def test_an_edited_file_is_converted_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {"a.py": PLAIN})
    check(capsys, tmp_path)
    (tmp_path / "src" / "a.py").write_text(TRAIN, encoding="utf-8")
    assert check(capsys, tmp_path)[0] == 1


def test_an_edit_invalidates_only_the_edited_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN, "b.py": SGD, "c.py": CANDIDATE})
    check(capsys, tmp_path)
    (tmp_path / "src" / "b.py").write_text(SGD + "# edited\n", encoding="utf-8")
    _, _, err = check(capsys, tmp_path)
    assert summary_numbers(err)["from the cache"] == 2


def test_a_file_edited_within_the_same_mtime_tick_is_read_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file system whose stat shows only size and mtime: the racy-git case.
    monkeypatch.setattr(cache, "stamp_of", lambda info: (0, 0, info.st_size, info.st_mtime_ns, 0))
    source = tmp_path / "src" / "a.py"
    tree(tmp_path / "src", {"a.py": SGD})
    mtime = source.stat().st_mtime_ns
    assert check(capsys, tmp_path)[0] == 1
    source.write_text(SGD.replace("torch.optim", "torch_optim"), encoding="utf-8")  # same size
    os.utime(source, ns=(mtime, mtime))
    assert check(capsys, tmp_path)[0] == 0


def test_an_old_file_with_an_unchanged_stat_is_taken_from_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The twin of the test above: the same edit to a file older than the racy window is not
    # seen when the stat shows nothing else (why the real stat includes ctime and inode).
    monkeypatch.setattr(cache, "stamp_of", lambda info: (0, 0, info.st_size, info.st_mtime_ns, 0))
    source = tmp_path / "src" / "a.py"
    tree(tmp_path / "src", {"a.py": SGD})
    old = time.time_ns() - 60 * 10**9
    os.utime(source, ns=(old, old))
    assert check(capsys, tmp_path)[0] == 1
    source.write_text(SGD.replace("torch.optim", "torch_optim"), encoding="utf-8")
    os.utime(source, ns=(old, old))
    assert check(capsys, tmp_path)[0] == 1


def test_an_edited_semantic_map_invalidates_the_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    from tests.test_prefilter import LION_MAP

    user_map = tmp_path / "lion.yaml"
    user_map.write_text(LION_MAP, encoding="utf-8")
    tree(tmp_path / "src", {"a.py": TRAIN})
    check(capsys, tmp_path, "--semantic-map", "lion.yaml")
    poison(open_run_cache(tmp_path, "lion.yaml"), tmp_path / "src" / "a.py")
    user_map.write_text(LION_MAP + "\n# edited\n", encoding="utf-8")
    assert check(capsys, tmp_path, "--semantic-map", "lion.yaml")[0] == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [("--exact", None), ("--steps-per-epoch", "len(loader)"), ("--semantic-map", "lion.yaml")],
)
def test_an_option_that_changes_output_invalidates_the_results(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trusting: None,
    option: str,
    value: str | None,
) -> None:
    from tests.test_prefilter import LION_MAP

    (tmp_path / "lion.yaml").write_text(LION_MAP, encoding="utf-8")
    tree(tmp_path / "src", {"a.py": TRAIN})
    check(capsys, tmp_path)
    poison(open_run_cache(tmp_path), tmp_path / "src" / "a.py")
    assert check(capsys, tmp_path)[0] == 0  # poisoned, without the option
    assert check(capsys, tmp_path, option, *([value] if value else []))[0] == 1


def test_another_package_version_ignores_the_cache(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trusting: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    check(capsys, tmp_path)
    poison(open_run_cache(tmp_path), tmp_path / "src" / "a.py")
    monkeypatch.setattr("ml_switcheroo.__version__", "999.0")
    assert check(capsys, tmp_path)[0] == 1


def test_edited_package_code_ignores_the_cache(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trusting: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    check(capsys, tmp_path)
    poison(open_run_cache(tmp_path), tmp_path / "src" / "a.py")
    monkeypatch.setattr(cache, "package_digest", lambda: "0" * 64)
    assert check(capsys, tmp_path)[0] == 1


@pytest.mark.parametrize(
    "change",
    ["maps", "options", "include_generated", "libcst", "python"],
)
def test_the_run_key_depends_on_everything_a_result_depends_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    user_map = tmp_path / "m.yaml"
    user_map.write_text("{}\n", encoding="utf-8")
    maps, options, generated = [str(user_map)], {"exact": False, "prefilter": True}, False
    before = cache.run_key(maps, options, generated)
    if change == "maps":
        user_map.write_text("{} # edited\n", encoding="utf-8")
    elif change == "options":
        options = {**options, "exact": True}
    elif change == "include_generated":
        generated = True
    elif change == "libcst":
        monkeypatch.setattr(cache, "libcst_version", lambda: "0.0.1")
    else:
        monkeypatch.setattr(sys, "version_info", (2, 7, 0))
    assert cache.run_key(maps, options, generated) != before


def test_the_pre_filter_option_does_not_change_the_run_key(tmp_path: Path) -> None:
    on = cache.run_key([], {"exact": False, "prefilter": True}, False)
    assert cache.run_key([], {"exact": False, "prefilter": False}, False) == on


def test_a_no_prefilter_run_does_not_replay_pre_filter_outcomes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {"a.py": PLAIN, "b.py": TRAIN})
    check(capsys, tmp_path)
    _, _, err = check(capsys, tmp_path, "--no-prefilter")
    assert summary_numbers(err)["pre-filtered out"] == 0
    assert summary_numbers(err)["parsed"] == 2


# --------------------------------------------------------------------------- modes


def test_in_place_converts_a_file_whose_cached_result_is_a_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN, "kept.py": CANDIDATE})
    check(capsys, tmp_path)
    code, _, err = run(capsys, "-i", "--cache", ".c", "src", cwd=tmp_path)
    assert code == 0 and summary_numbers(err)["from the cache"] == 1  # kept.py only
    assert "import optax" in (tmp_path / "src" / "a.py").read_text(encoding="utf-8")


def test_a_diff_run_prints_the_diff_of_a_file_whose_cached_result_is_a_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    check(capsys, tmp_path)
    code, out, _ = run(capsys, "--check", "--diff", "--cache", ".c", "src", cwd=tmp_path)
    assert code == 1 and "+import optax" in out


def test_a_syntax_error_is_replayed_and_a_fixed_file_converted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {"broken.py": BROKEN})
    check(capsys, tmp_path)
    code, _, err = check(capsys, tmp_path)
    assert code == 3 and "error: src/broken.py: syntax error" in err
    assert summary_numbers(err)["from the cache"] == 1
    (tmp_path / "src" / "broken.py").write_text(SGD, encoding="utf-8")
    assert check(capsys, tmp_path)[0] == 1


def test_an_unusable_cache_directory_is_reported_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    (tmp_path / ".c").write_text("a file, not a directory", encoding="utf-8")
    code, _, err = check(capsys, tmp_path)
    assert code == 1 and "not usable; running without" in err


# --------------------------------------------------------------------------- damage


def cache_files_of(root: Path) -> list[Path]:
    return [p for p in (root / ".c").rglob("*") if p.is_file()]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_cache_is_a_miss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None, damage: str
) -> None:
    tree(tmp_path / "src", LAYOUT)
    _, uncached = report_of(capsys, tmp_path, "--no-cache")
    report_of(capsys, tmp_path, "--cache", ".c")
    for path in cache_files_of(tmp_path):
        data = path.read_bytes()
        damaged = {"garbage": os.urandom(len(data)), "truncated": data[: len(data) // 2]}
        path.write_bytes(damaged.get(damage, b""))
    _, damaged_run = report_of(capsys, tmp_path, "--cache", ".c")
    assert damaged_run == uncached


def test_a_result_with_a_valid_header_and_a_flipped_byte_is_a_miss() -> None:
    packed = cache._pack("k" * 64, {"changed": True, "records": []})
    flipped = packed.replace(b"true", b"fals")
    assert cache._unpack(packed, "k" * 64) == {"changed": True, "records": []}
    assert cache._unpack(flipped, "k" * 64) is None


def test_an_entry_of_another_cache_format_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "FORMAT", cache.FORMAT + 1)
    packed = cache._pack("k" * 64, {"changed": False, "records": []})
    monkeypatch.undo()
    assert cache._unpack(packed, "k" * 64) is None


def test_an_entry_under_another_key_is_a_miss() -> None:
    packed = cache._pack("k" * 64, {"changed": False, "records": []})
    assert cache._unpack(packed, "j" * 64) is None


WRITER = """
import sys
from ml_switcheroo.app import cache
path = sys.argv[1]
big = ["x" * 200] * 20000  # ~4 MB: a write takes a while
n = 0
while True:
    cache._atomic_write(path, cache._pack("k" * 64, {"n": n, "data": big}))
    n += 1
    if n == 1:
        print("ready", flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.13, 0.31])
def test_kill_9_during_a_write_leaves_a_whole_entry_or_none(tmp_path: Path, delay: float) -> None:
    target = tmp_path / "entry"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    payload = cache._unpack(target.read_bytes(), "k" * 64)
    assert payload is not None and len(payload["data"]) == 20000


def test_a_run_killed_with_kill_9_leaves_a_cache_that_gives_the_right_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = {f"m{i}.py": TRAIN.replace("0.01", f"0.0{i}") for i in range(1, 10)}
    tree(tmp_path / "src", {**LAYOUT, **layout})
    _, uncached = report_of(capsys, tmp_path, "--no-cache")
    argv = [sys.executable, "-m", "ml_switcheroo", "convert", "--check", "-j", "2"]
    for delay in (1.0, 2.0, 3.0):
        process = subprocess.Popen(
            [*argv, "--cache", ".c", "src"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            start_new_session=True,
        )
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert report_of(capsys, tmp_path, "--cache", ".c")[1] == uncached


def test_concurrent_runs_sharing_a_cache_give_the_right_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = {f"m{i}.py": TRAIN.replace("0.01", f"0.0{i}") for i in range(1, 10)}
    tree(tmp_path / "src", {**LAYOUT, **layout})
    _, uncached = report_of(capsys, tmp_path, "--no-cache")
    argv = [sys.executable, "-m", "ml_switcheroo", "convert", "--check", "-j", "1"]
    processes = [
        subprocess.Popen(
            [*argv, "--cache", ".c", "--report", f"p{i}.json", "src"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for i in range(3)
    ]
    assert [p.wait(timeout=300) for p in processes] == [3, 3, 3]
    for i in range(3):
        assert (tmp_path / f"p{i}.json").read_text(encoding="utf-8") == uncached
    assert report_of(capsys, tmp_path, "--cache", ".c")[1] == uncached


def test_cached_results_hold_no_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    check(capsys, tmp_path)
    results = [p for p in cache_files_of(tmp_path) if "results" in p.parts]
    assert results
    for path in results:
        assert b"a.py" not in path.read_bytes()
        payload = json.loads(path.read_bytes().partition(b"\n")[2])
        assert all(record["file"] is None for record in payload["records"])


def test_a_copy_of_the_same_bytes_elsewhere_is_served_by_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    check(capsys, tmp_path)
    tree(tmp_path / "src", {"copy.py": TRAIN})
    _, _, err = check(capsys, tmp_path)
    assert summary_numbers(err)["from the cache"] == 2


def test_facts_from_other_files_are_part_of_the_result_key() -> None:
    assert cache.facts_from_other_files("x.py") == ""  # no such file: no other file decides
    assert cache.result_key("k", "s") != cache.result_key("k", "s", "facts")


# --------------------------------------------------------------------------- the run's map

BUILDER = "from mylib.optim import Lion\n\n\ndef make(params):\n    return Lion(params, lr=1e-3)\n"
BUILDER_USER = textwrap.dedent(
    """\
    from builders import make


    def fit(model, batches):
        opt = make(model.parameters())
        for batch in batches:
            opt.zero_grad()
            model(batch).backward()
            opt.step()
    """
)


def test_a_user_maps_builder_edited_between_cached_runs_gives_the_uncached_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    """train.py names neither torch nor mylib: only the user map's words link it to the
    builder of its optimizer in builders.py, so the cache must key its result on them."""
    from tests.test_prefilter import LION_MAP

    (tmp_path / "lion.yaml").write_text(LION_MAP, encoding="utf-8")
    tree(tmp_path / "src", {"builders.py": BUILDER, "train.py": BUILDER_USER})
    with_map = ("--semantic-map", "lion.yaml")
    assert "train.py" in report_of(capsys, tmp_path, "--cache", ".c", *with_map)[1]
    (tmp_path / "src" / "builders.py").write_text(
        BUILDER.replace("Lion(", "Other("), encoding="utf-8"
    )
    _, uncached = report_of(capsys, tmp_path, "--no-cache", *with_map)
    assert "train.py" not in uncached  # its optimizer is no longer one the map knows
    assert report_of(capsys, tmp_path, "--cache", ".c", *with_map)[1] == uncached


def test_the_dependency_words_are_those_of_the_run_s_map_and_target(tmp_path: Path) -> None:
    from ml_switcheroo.targets.catalogue import load_semantic_map
    from ml_switcheroo.targets.nnx.target import NNX
    from tests.test_prefilter import LION_MAP

    (tmp_path / "lion.yaml").write_text(LION_MAP, encoding="utf-8")
    user_map = load_semantic_map([tmp_path / "lion.yaml"], NNX)
    assert {b"mylib", b"nnx", b"torch"} <= set(cache.source_words(user_map, "nnx"))


def test_a_broken_user_map_stops_a_cached_run_as_an_uncached_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    """No proof that the maps compile is recorded for a broken map: its run key's runs are
    parsed with the map checks, every time."""
    tree(tmp_path / "src", {"a.py": TRAIN})
    (tmp_path / "bad.yaml").write_text("apis:\n  torch.optim.Adamw:\n    hook: nope\n")
    errors = []
    for extra in (("--no-cache",), ("--cache", ".c"), ("--cache", ".c")):
        with pytest.raises(SystemExit) as exit_info:
            run(capsys, "--check", *extra, "--semantic-map", "bad.yaml", "src", cwd=tmp_path)
        assert exit_info.value.code == 2
        errors.append(capsys.readouterr().err)
    assert errors[0] == errors[1] == errors[2] and "bad.yaml" in errors[0]
    assert not open_run_cache(tmp_path, "bad.yaml").maps_compiled()


def test_a_run_that_compiled_its_maps_records_the_proof(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path / "src", {"a.py": PLAIN})
    check(capsys, tmp_path)
    assert open_run_cache(tmp_path).maps_compiled()
    assert not open_run_cache(tmp_path, exact=True).maps_compiled()  # another run key


# --------------------------------------------------------------------------- start-up

RUN_AND_LIST_MODULES = textwrap.dedent(
    """
    import json, sys
    from ml_switcheroo import convert
    from ml_switcheroo.app import cache
    cache.RACY_NS = -(10**18)
    code = convert.main(["--check", "-j", "1", "-q", "--cache", ".c", "src"])
    heavy = ("libcst", "libcst.codemod", "ml_switcheroo.spec.semantic_map", "yaml")
    print(json.dumps([code, [name for name in heavy if name in sys.modules]]))
    """
)


def cached_run_modules(root: Path) -> tuple[int, list[str]]:
    """The exit code of a cached ``--check`` run over ``root/src`` in a process of its own,
    and which of libcst, libcst.codemod, the map compiler and PyYAML it imported."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    code, modules = json.loads(result.stdout.splitlines()[-1])
    return code, modules


def test_a_cached_run_whose_every_file_hits_imports_neither_libcst_nor_the_map(
    tmp_path: Path,
) -> None:
    tree(tmp_path / "src", LAYOUT)
    first = cached_run_modules(tmp_path)
    assert first == (3, ["libcst", "libcst.codemod", "ml_switcheroo.spec.semantic_map", "yaml"])
    assert cached_run_modules(tmp_path) == (3, [])  # broken.py's failure, from the cache


def test_a_cached_run_with_an_edited_file_compiles_the_map_and_converts_it(
    tmp_path: Path,
) -> None:
    tree(tmp_path / "src", {"a.py": PLAIN, "b.py": PLAIN.replace("\n", "\n\n", 1)})
    assert cached_run_modules(tmp_path)[0] == 0
    (tmp_path / "src" / "a.py").write_text(TRAIN, encoding="utf-8")
    code, modules = cached_run_modules(tmp_path)
    assert code == 1 and "libcst.codemod" in modules


def test_the_libcst_version_is_read_without_importing_libcst() -> None:
    from libcst._version import __version__

    assert cache.libcst_version() == __version__
