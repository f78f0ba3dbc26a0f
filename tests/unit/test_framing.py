"""The worker socket's frames (durable.devtool.framing): blocks of frames, split anywhere."""

from __future__ import annotations

import asyncio

import pytest
from durable.devtool.framing import MAX_FRAME, FrameReader, FrameWriter, encode, encode_many
from durable.messages import Ack, EntryKind, JournalEntry, NewEntry

pytestmark = pytest.mark.timeout(20)

MESSAGES = [
    Ack("inv_a", 1, 3),
    NewEntry("inv_a", 1, JournalEntry(4, EntryKind.RUN, "step", None, "4", None, True), True),
    {"any": ["picklable", 1]},
]


async def feed(chunks: list[bytes]) -> list:
    reader = asyncio.StreamReader()
    frames = FrameReader(reader)
    got: list = []

    async def write() -> None:
        for c in chunks:
            reader.feed_data(c)
            await asyncio.sleep(0)
        reader.feed_eof()

    writer = asyncio.ensure_future(write())
    while (batch := await frames.frames()) is not None:
        assert batch, "a batch holds at least one frame"
        got.extend(batch)
    await writer
    return got


async def test_frames_split_and_joined_anyhow_arrive_whole_and_in_order():
    data = b"".join(encode(m) for m in MESSAGES * 3)
    assert await feed([data]) == MESSAGES * 3  # all in one read
    assert await feed([data[i : i + 1] for i in range(len(data))]) == MESSAGES * 3  # byte by byte
    assert await feed([data[:7], data[7:50], data[50:]]) == MESSAGES * 3


async def test_a_frame_of_several_messages_yields_each_in_order():
    data = encode_many(MESSAGES) + encode(MESSAGES[0]) + encode_many(MESSAGES[1:2])
    want = MESSAGES + MESSAGES[:2]
    assert await feed([data]) == want
    assert await feed([data[i : i + 3] for i in range(0, len(data), 3)]) == want
    assert len(encode_many(MESSAGES)) < sum(len(encode(m)) for m in MESSAGES)


async def test_a_stream_cut_inside_a_frame_ends_after_the_whole_ones():
    data = b"".join(encode(m) for m in MESSAGES)
    assert await feed([data[:-5]]) == MESSAGES[:2]


async def test_an_oversize_length_is_refused():
    with pytest.raises(ValueError, match="over the limit"):
        await feed([(MAX_FRAME + 1).to_bytes(4, "big") + b"x"])


async def test_a_frame_writer_sends_a_turn_in_one_write_or_at_once_when_asked():
    class Sink:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return False

    sink = Sink()
    w = FrameWriter(sink)  # type: ignore[arg-type]
    w.send(MESSAGES[0])
    w.send(MESSAGES[1])
    assert sink.writes == []  # not before the end of the turn
    await asyncio.sleep(0)
    assert sink.writes == [encode_many(MESSAGES[:2])]
    w.send(MESSAGES[0])
    w.send(MESSAGES[2], at_once=True)
    assert sink.writes[1:] == [encode_many([MESSAGES[0], MESSAGES[2]])]
    await asyncio.sleep(0)
    assert len(sink.writes) == 2  # the turn's scheduled flush found nothing left
    assert await feed(sink.writes) == MESSAGES[:2] + [MESSAGES[0], MESSAGES[2]]
