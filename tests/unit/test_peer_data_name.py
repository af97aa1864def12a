"""The shared reference-data actor is named after its database, so runtimes over different databases on one
Ray cluster never share it."""

from __future__ import annotations

from pathlib import Path

from actors.peer_data import PEER_DATA, peer_data_name
from cidadao.settings import load_settings


def test_one_name_per_database() -> None:
    a = load_settings(database_url="postgresql://u@db1:5432/cidadao", data_home=Path("/tmp/a"))
    same = load_settings(database_url="postgresql://u@db1:5432/cidadao", data_home=Path("/tmp/b"))
    other = load_settings(database_url="postgresql://u@db1:5432/bench", data_home=Path("/tmp/a"))
    embedded_a = load_settings(database_url=None, read_replica_url=None, data_home=Path("/tmp/a"))
    embedded_b = load_settings(database_url=None, read_replica_url=None, data_home=Path("/tmp/b"))
    replica = load_settings(
        database_url="postgresql://u@db1:5432/cidadao",
        read_replica_url="postgresql://u@db2:5432/cidadao",
    )
    names = [peer_data_name(s) for s in (a, other, embedded_a, embedded_b, replica)]
    assert peer_data_name(a) == peer_data_name(same)  # the data home does not matter when a URL is set
    assert len(set(names)) == len(names) and all(n.startswith(PEER_DATA + "-") for n in names)
    assert "db1" not in names[0]  # the URL (and any password in it) does not leak into the actor's name
