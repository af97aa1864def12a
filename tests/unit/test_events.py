"""Event records: made with validated data, encoded for a stream and read back; what does not fit is refused
with a message naming the type and the field."""

from __future__ import annotations

import pytest

from cidadao.events import EVENTS, EventError, decode, encode, make, stream_of


def test_round_trip_of_every_type() -> None:
    samples = {
        "contracts.ingested": {"kind": "contracts", "source": "a.jsonl", "accepted": 3, "rejected": 1, "duplicates": 0},
        "investigation.created": {"investigation_id": "i", "scope": {"all": True, "year": None}},
        "investigation.started": {"investigation_id": "i", "attempt": 1, "agent": "cidadao-investigator-1"},
        "investigation.progress": {"investigation_id": "i", "progress": 0.5},
        "investigation.completed": {"investigation_id": "i", "contracts_analyzed": 9, "flag_counts": {"x": 1},
                                    "flags_by_organ_month": [("26000", "2024-03", "x", 1)]},
        "investigation.failed": {"investigation_id": "i", "error": "boom", "attempts": 3},
        "investigation.cancelled": {"investigation_id": "i"},
        "cache.invalidate": {"keys": ["k"], "prefixes": ["inv:"]},
    }  # fmt: skip
    assert set(samples) == set(EVENTS)
    for type_, data in samples.items():
        event = make(type_, key="k", **data)
        fields = {k.encode(): v for k, v in encode(event).items()}
        back = decode(fields)
        assert (back.type, back.key, back.version, back.data) == (type_, "k", 1, event.data)
        assert back.occurred_at == event.occurred_at
    assert stream_of("investigation.progress") == "cidadao:events:investigation"


def test_what_does_not_fit_is_refused_by_name() -> None:
    with pytest.raises(EventError, match=r"unknown event type 'investigation\.exploded'"):
        make("investigation.exploded")
    with pytest.raises(EventError, match=r"investigation.progress: progress: Input should be less than or equal"):
        make("investigation.progress", investigation_id="i", progress=1.5)
    with pytest.raises(EventError, match=r"investigation\.cancelled: surprise: Extra inputs are not permitted"):
        make("investigation.cancelled", investigation_id="i", surprise=True)
    fields = {k.encode(): v for k, v in encode(make("investigation.cancelled", investigation_id="i")).items()}
    with pytest.raises(EventError, match="version 2 is not supported"):
        decode({**fields, b"v": b"2"})
    with pytest.raises(EventError, match="not an event entry"):
        decode({b"garbage": b"1"})
