"""A stopped local Ray's session leaves Ray's temporary directory for the data home's logs."""

from __future__ import annotations

from pathlib import Path

from pipelines.ray_session import keep_session


def _session(tmp: Path, name: str) -> Path:
    session = tmp / name
    (session / "logs").mkdir(parents=True)
    (session / "logs" / "raylet.out").write_text("raylet log\n")
    return session


def test_a_session_moves_to_the_logs_and_its_links_go(tmp_path: Path) -> None:
    ray_tmp, logs = tmp_path / "ray", tmp_path / "home" / "logs"
    ours = _session(ray_tmp, "session_2026-12-02_12-00-00_000001_10")
    theirs = _session(ray_tmp, "session_2026-12-02_12-00-05_000001_20")  # another Ray's, running
    (ray_tmp / "session_latest").symlink_to(ours)
    (ray_tmp / "prom_metrics_service_discovery.json").symlink_to(ours / "prom_metrics_service_discovery.json")
    (ray_tmp / "theirs_latest").symlink_to(theirs)

    kept = keep_session(ours, logs)
    assert kept == logs / "ray" / ours.name and (kept / "logs" / "raylet.out").read_text() == "raylet log\n"
    assert not ours.exists() and theirs.is_dir() and (ray_tmp / "theirs_latest").is_symlink()
    assert not (ray_tmp / "session_latest").is_symlink()
    assert not (ray_tmp / "prom_metrics_service_discovery.json").is_symlink()
    assert (logs / "ray").stat().st_mode & 0o077 == 0

    keep_session(theirs, logs)  # the last one out: Ray's temporary directory goes too
    assert not ray_tmp.exists()
    assert keep_session(theirs, logs) is None  # already moved


def test_only_the_newest_sessions_are_kept(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    names = [f"session_2026-12-0{d}_12-00-00_000001_{d}" for d in range(1, 9)]
    for name in names:
        keep_session(_session(tmp_path / "ray", name), logs, keep=3)
    assert sorted(p.name for p in (logs / "ray").iterdir()) == names[-3:]
