"""Event-camera file formats, decoded into tonic-style event arrays (frames.EVENT_DTYPE: x, y,
t in microseconds, p 0 = OFF / 1 = ON). Formats only: which files make a dataset, and their
labels, is the business of the dataset layouts (cifar10dvs.py, nmnist.py, dvsgesture.py,
ncaltech101.py).

  aedat2        AEDAT 2.0 (jAER; CIFAR10-DVS original release): tonic.io.read_aedat_header_from_file +
                get_aer_events_from_file; DVS128 address: x = a>>8 & 127, y = a>>1 & 127, p = a & 1,
                as tonic's read_dvs_128
  aedat31       AEDAT 3.1 (DVS128 Gesture original release): decoded here, see below
  aedat4        AEDAT 4.0 (tonic's CIFAR10-DVS conversion): tonic.io.read_aedat4 (`aedat` package)
  nmnist-bin, ncaltech-bin
                the 5-byte .bin events of N-MNIST and N-Caltech101 (tonic.io.read_mnist_file)
  npy           tonic's preprocessed DVS Gesture release: float [N, 4] columns x, y, p, t in ms

Why not tonic everywhere: tonic 1.7's read_dvs_128 / read_dvs_ibm unpack the three values of
read_aedat_header_from_file into two (ValueError on every file), and its AEDAT 3.1 packet loop
ignores the event type, so special events would be read as polarity events. AEDAT 3.1 is decoded
here: polarity packets (type 1) only, valid events only, t = tsOverflow << 31 | timestamp.

Every event is checked against the sensor (x < W, y < H, p in 0/1); a file outside it, truncated,
zero-byte or malformed is a one-line DataError naming the file. quick_check() does the checks that
need no decoding (size, magic, AEDAT4 sensor size) for `snnbench data check`.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np

from snnbench.data.common import damaged, one_line
from snnbench.data.frames import make_events

FORMAT_NAMES = {
    "aedat2": "AEDAT 2.0 original release",
    "aedat4": "AEDAT4 (tonic conversion)",
    "nmnist-bin": "N-MNIST .bin original release",
    "aedat31": "AEDAT 3.1 original release",
    "npy": "tonic npy",
    "ncaltech-bin": "N-Caltech101 .bin original release",
}
MAGIC = {"aedat2": b"#!AER-DAT2", "aedat4": b"#!AER-DAT4.0", "aedat31": b"#!AER-DAT3"}


def quick_check(path: str | Path, kind: str, sensor: tuple[int, int]) -> None:
    """Size and header checks that need no decoding; a fault is a DataError naming the file."""
    size = os.stat(path).st_size
    if size == 0:
        raise damaged(path, "zero-byte file; restore it from the archive")
    if kind in ("nmnist-bin", "ncaltech-bin"):
        if size % 5:
            raise damaged(path, f"size {size} is not a whole number of 5-byte events: truncated")
        return
    if kind == "npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise damaged(path, f"not a readable .npy file ({type(exc).__name__}: {one_line(exc)})") from None
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise damaged(
                path, f"holds an array of shape {arr.shape}; tonic's layout has [N, 4] (x, y, p, t)"
            )
        return
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head.startswith(MAGIC[kind]):
        raise damaged(path, f"does not start with {MAGIC[kind].decode()}: not an {FORMAT_NAMES[kind]} file")
    if kind == "aedat4":
        w, h = _aedat4_size(path)
        if w > sensor[0] or h > sensor[1]:
            raise damaged(
                path, f"events outside the {sensor[0]}x{sensor[1]} sensor (the file is from a {w}x{h} one)"
            )


def _aedat4_size(path: Path) -> tuple[int, int]:
    import aedat

    try:
        streams = aedat.Decoder(str(path)).id_to_stream()
    except Exception as exc:
        raise damaged(path, f"not a readable AEDAT4 header ({one_line(exc)})") from None
    events = [s for _, s in sorted(streams.items()) if s.get("type") == "events"]
    if not events:
        raise damaged(path, "AEDAT4 file has no event stream")
    return int(events[0]["width"]), int(events[0]["height"])


def decode(path: Path, kind: str, sensor: tuple[int, int]) -> np.ndarray:
    """All events of one file as frames.EVENT_DTYPE, checked against the sensor (W, H)."""
    quick_check(path, kind, sensor)
    events = DECODERS[kind](path)
    check_sensor(path, events, sensor)
    return events


def check_sensor(path: Path, events: np.ndarray, sensor: tuple[int, int]) -> None:
    if len(events) == 0:
        return
    w, h = sensor
    for name, bound in (("x", w), ("y", h)):
        lo, hi = int(events[name].min()), int(events[name].max())
        if lo < 0 or hi >= bound:
            raise damaged(path, f"events outside the {w}x{h} sensor ({name} spans {lo}..{hi})")
    p = np.unique(events["p"])
    if not np.isin(p, (0, 1)).all():
        raise damaged(path, f"polarities {p.tolist()[:4]} are not 0/1")


def _events(x, y, t, p) -> np.ndarray:
    return make_events(
        np.asarray(x, dtype=np.int64).clip(-1, 32767),  # int16 field: keep out-of-range values detectable
        np.asarray(y, dtype=np.int64).clip(-1, 32767),
        np.asarray(t, dtype=np.int64),
        np.asarray(p, dtype=np.int64).clip(-1, 127),
    )


def aedat_header(path: str | Path) -> tuple[float, int]:
    """(version, byte where the events start) of an AEDAT 2.x / 3.x file.

    tonic's read_aedat_header_from_file first; its parse needs CRLF line ends and a particular
    "Creation time:" line format, so when it raises, the '#' lines are parsed here instead.
    """
    import tonic.io

    try:
        version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
        return float(version), int(start)
    except Exception:
        pass
    version, start = None, 0
    with open(path, "rb") as fh:
        for line in iter(fh.readline, b""):
            if not line.startswith(b"#"):
                break
            start += len(line)
            m = re.match(rb"#!AER-DAT(\d+\.\d+)", line)
            if m:
                version = float(m.group(1))
            if line.startswith(b"#!END-HEADER"):
                break
    if version is None:
        raise damaged(path, "no '#!AER-DAT<version>' header line: not an AEDAT file")
    return version, start


def _decode_aedat2(path: Path) -> np.ndarray:
    import tonic.io

    version, start = aedat_header(path)
    if not 2 <= version < 3:
        raise damaged(path, f"is AEDAT {version}, this layout holds AEDAT 2.0")
    if (os.path.getsize(path) - start) % 8:
        raise damaged(path, "truncated: the event block is not a whole number of 8-byte events")
    raw = tonic.io.get_aer_events_from_file(str(path), version, start)
    addr = raw["address"].astype(np.int64)
    return _events((addr >> 8) & 0x7F, (addr >> 1) & 0x7F, raw["timeStamp"], addr & 1)


def _decode_aedat4(path: Path) -> np.ndarray:
    import tonic.io

    try:
        raw = tonic.io.read_aedat4(str(path))
    except Exception as exc:
        raise damaged(path, f"not a readable AEDAT4 file ({type(exc).__name__}: {one_line(exc)})") from None
    return _events(raw["x"], raw["y"], raw["t"].astype(np.int64), raw["on"].astype(np.int64))


def _decode_bin(path: Path) -> np.ndarray:
    import tonic.io

    dtype = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    try:
        raw = tonic.io.read_mnist_file(str(path), dtype=dtype)
    except Exception as exc:
        raise damaged(
            path, f"not a readable .bin event file ({type(exc).__name__}: {one_line(exc)})"
        ) from None
    return _events(raw["x"], raw["y"], raw["t"], raw["p"])


def _decode_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise damaged(path, f"not a readable .npy file ({type(exc).__name__}: {one_line(exc)})") from None
    if arr.ndim != 2 or arr.shape[1] != 4 or not np.issubdtype(arr.dtype, np.number):
        raise damaged(
            path, f"holds {arr.dtype} {arr.shape}; tonic's layout has numbers [N, 4] (x, y, p, t ms)"
        )
    if not np.isfinite(arr).all():
        raise damaged(path, "holds non-finite values")
    x, y, p, t_ms = (arr[:, i] for i in range(4))
    return _events(x, y, np.round(t_ms.astype(np.float64) * 1000), p)


_PACKET = struct.Struct("<hhiiiiii")  # type, source, size, tsOffset, tsOverflow, capacity, number, valid


def _decode_aedat31(path: Path) -> np.ndarray:
    version, start = aedat_header(path)
    if not 3 <= version < 4:
        raise damaged(path, f"is AEDAT {version}, this layout holds AEDAT 3.1")
    with open(path, "rb") as fh:
        data = fh.read()
    pos, parts = start, []
    while pos < len(data):
        if len(data) - pos < _PACKET.size:
            raise damaged(path, f"truncated: a packet header at byte {pos} is cut short")
        etype, _, esize, _, overflow, capacity, number, _ = _PACKET.unpack_from(data, pos)
        pos += _PACKET.size
        if esize <= 0 or capacity < 0 or not 0 <= number <= capacity:
            raise damaged(path, f"malformed packet header at byte {pos - _PACKET.size}")
        nbytes = capacity * esize
        if pos + nbytes > len(data):
            raise damaged(path, f"truncated: a packet at byte {pos - _PACKET.size} needs {nbytes} bytes")
        if etype == 1 and number:
            if esize < 8:
                raise damaged(path, f"polarity events of {esize} bytes; AEDAT 3.1 uses 8")
            block = np.frombuffer(data, dtype=np.uint8, count=number * esize, offset=pos).reshape(
                number, esize
            )
            words = np.ascontiguousarray(block[:, :8]).view("<u4").astype(np.int64)
            word, ts = words[:, 0], words[:, 1] & 0x7FFFFFFF
            keep = (word & 1) == 1  # the validity mark
            parts.append(
                (
                    (word >> 17) & 0x7FFF,
                    (word >> 2) & 0x7FFF,
                    ts | (int(overflow) << 31),
                    (word >> 1) & 1,
                    keep,
                )
            )
        pos += nbytes
    if not parts:
        raise damaged(path, "holds no polarity events")
    x, y, t, p, keep = (np.concatenate(c) for c in zip(*parts))
    return _events(x[keep], y[keep], t[keep], p[keep])


DECODERS = {
    "aedat2": _decode_aedat2,
    "aedat4": _decode_aedat4,
    "nmnist-bin": _decode_bin,
    "ncaltech-bin": _decode_bin,
    "aedat31": _decode_aedat31,
    "npy": _decode_npy,
}
