"""Writers of tiny datasets in their real published formats, for reader tests (any test may use them).

Every writer puts files where a user's copy would be under a data root and returns the ground
truth it wrote, so a test can check a reader against an independent computation:

- CIFAR-10 / CIFAR-100: python pickles (protocol 2, bytes keys) with b'data' uint8 [N, 3072],
  b'labels' or b'fine_labels' + b'coarse_labels', b'filenames', b'batch_label'; batches.meta / meta.
- TinyImageNet-200: wnids.txt, train/<wnid>/images/*.JPEG and val/ with val_annotations.txt,
  real JPEGs written by PIL.
- N-MNIST / N-Caltech101: .bin files in the 5-byte encoding (x, y, polarity bit + 23-bit µs time).
- CIFAR10-DVS: AEDAT 2.0 (jAER header, big-endian address/timestamp pairs, DVS128 address
  x << 8 | y << 1 | p) or AEDAT 4.0 (hand-built flatbuffers, uncompressed, as the `aedat` decoder reads).
- DVS128 Gesture: AEDAT 3.1 (header, 28-byte packet headers, polarity packets of 8-byte events, a
  special-event packet the reader must skip) with *_labels.csv and trials_to_*.txt; or tonic's
  .npy layout (columns x, y, p, t in ms).
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ---------------------------------------------------------------- static images


class Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote the CIFAR files: byte strings (and str, a py2 byte
    string) as BINSTRING opcodes, numpy globals under numpy.core.multiarray. Python 3 reads them
    only with encoding="bytes", which is how the real files must be read."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + bytes(obj))
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin-1"))

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", "")
        if module.startswith("numpy._core"):
            name = name or obj.__qualname__
            self.write(pickle.GLOBAL + f"{module.replace('numpy._core', 'numpy.core')}\n{name}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def write_pickle(path: Path, obj) -> Path:
    """A pickle the way the CIFAR archives hold them (Py2Pickler, protocol 2)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        Py2Pickler(fh, protocol=2).dump(obj)
    return path


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10(
    root: Path, train_rows: int = 4, test_rows: int = 6, seed: int = 0
) -> dict[str, np.ndarray]:
    """cifar-10-batches-py/ with 5 train batches of `train_rows` images and a test batch of `test_rows`.
    Returns train_x / test_x uint8 [N, 3, 32, 32] and train_y / test_y int64."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    xs, ys = [], []
    for i in range(1, 6):
        data, labels = _images(rng, train_rows), rng.integers(0, 10, train_rows).tolist()
        write_pickle(
            folder / f"data_batch_{i}", _cifar_batch(f"training batch {i} of 5", data, {b"labels": labels})
        )
        xs.append(data)
        ys += labels
    test, test_labels = _images(rng, test_rows), rng.integers(0, 10, test_rows).tolist()
    write_pickle(folder / "test_batch", _cifar_batch("testing batch 1 of 1", test, {b"labels": test_labels}))
    write_pickle(
        folder / "batches.meta",
        {
            b"label_names": [c.encode() for c in CIFAR10_CLASSES],
            b"num_cases_per_batch": train_rows,
            b"num_vis": 3072,
        },
    )
    return {
        "train_x": np.concatenate(xs).reshape(-1, 3, 32, 32),
        "train_y": np.array(ys, dtype=np.int64),
        "test_x": test.reshape(-1, 3, 32, 32),
        "test_y": np.array(test_labels, dtype=np.int64),
    }


def write_cifar100(
    root: Path, train_rows: int = 10, test_rows: int = 6, seed: int = 0
) -> dict[str, np.ndarray]:
    """cifar-100-python/ train, test and meta; returns images and fine / coarse labels per split."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    out = {}
    for split, rows in (("train", train_rows), ("test", test_rows)):
        data = _images(rng, rows)
        fine, coarse = rng.integers(0, 100, rows).tolist(), rng.integers(0, 20, rows).tolist()
        write_pickle(
            folder / split, _cifar_batch(split, data, {b"fine_labels": fine, b"coarse_labels": coarse})
        )
        out[f"{split}_x"] = data.reshape(-1, 3, 32, 32)
        out[f"{split}_y"] = np.array(fine, dtype=np.int64)
        out[f"{split}_coarse"] = np.array(coarse, dtype=np.int64)
    write_pickle(
        folder / "meta",
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
    )
    return out


def _cifar_batch(name: str, data: np.ndarray, labels: dict) -> dict:
    return {
        b"batch_label": name.encode(),
        b"data": data,
        **labels,
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(data))],
    }


def write_tinyimagenet(
    root: Path,
    wnids: tuple[str, ...] = ("n01443537", "n01629819", "n01641577"),
    train_per_class: int = 3,
    val_per_class: int = 2,
    seed: int = 0,
    grey_every: int = 4,
) -> dict[str, list[tuple[Path, int]]]:
    """tiny-imagenet-200/ with real JPEGs (every `grey_every`-th one greyscale, as in the real set).
    Returns {"train": [(path, label)], "test": [(path, label)]}, label = index in sorted(wnids)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = root / "tiny-imagenet-200"
    (folder / "val" / "images").mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    (folder / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in wnids))
    label = {w: i for i, w in enumerate(sorted(wnids))}
    out: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
    count = 0

    def save(path: Path) -> None:
        nonlocal count
        count += 1
        pixels = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        im = (
            Image.fromarray(pixels[..., 0], "L")
            if count % grey_every == 0
            else Image.fromarray(pixels, "RGB")
        )
        im.save(path, format="JPEG", quality=90)

    for w in wnids:
        img_dir = folder / "train" / w / "images"
        img_dir.mkdir(parents=True, exist_ok=True)
        for k in range(train_per_class):
            save(img_dir / f"{w}_{k}.JPEG")
            out["train"].append((img_dir / f"{w}_{k}.JPEG", label[w]))
        (folder / "train" / w / f"{w}_boxes.txt").write_text("")
    lines = []
    for k in range(val_per_class * len(wnids)):
        w = wnids[k % len(wnids)]
        name = f"val_{k}.JPEG"
        save(folder / "val" / "images" / name)
        lines.append(f"{name}\t{w}\t0\t0\t63\t63\n")
        out["test"].append((folder / "val" / "images" / name, label[w]))
    (folder / "val" / "val_annotations.txt").write_text("".join(lines))
    return out


# ---------------------------------------------------------------- events


def random_events(
    rng: np.random.Generator, n: int, width: int, height: int, duration_us: int = 100_000, t0: int = 0
) -> dict[str, np.ndarray]:
    """n events sorted by time: x < width, y < height, p in {0, 1}, t in [t0, t0 + duration_us]."""
    t = np.sort(rng.integers(t0, t0 + duration_us, n)).astype(np.int64)
    t[0], t[-1] = t0, t0 + duration_us  # span the whole duration so time bins are predictable
    return {
        "x": rng.integers(0, width, n).astype(np.int64),
        "y": rng.integers(0, height, n).astype(np.int64),
        "t": t,
        "p": rng.integers(0, 2, n).astype(np.int64),
    }


def encode_bin(ev: dict[str, np.ndarray]) -> bytes:
    """N-MNIST / N-Caltech101 encoding: 5 bytes per event, x, y, then p << 23 | t (23 bits, big-endian)."""
    t = np.asarray(ev["t"], dtype=np.int64)
    if len(t) and (t.max() >= 1 << 23 or t.min() < 0):
        raise ValueError("the .bin format holds 23-bit timestamps (0 .. 8,388,607 µs)")
    raw = np.zeros((len(t), 5), dtype=np.uint8)
    raw[:, 0] = ev["x"]
    raw[:, 1] = ev["y"]
    word = (np.asarray(ev["p"], dtype=np.int64) << 23) | t
    raw[:, 2] = (word >> 16) & 0xFF
    raw[:, 3] = (word >> 8) & 0xFF
    raw[:, 4] = word & 0xFF
    return raw.tobytes()


def write_bin(path: Path, ev: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_bin(ev))
    return path


def write_aedat2(path: Path, ev: dict[str, np.ndarray]) -> Path:
    """jAER AEDAT 2.0: '#' header lines ending in CRLF, then big-endian (address, timestamp) uint32 pairs;
    DVS128 address = x << 8 | y << 1 | p (how tonic's read_dvs_128 decodes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
        b"# Data format is int32 address, int32 timestamp (8 bytes total)\r\n# Timestamps tick is 1 us\r\n"
    )
    addr = (np.asarray(ev["x"]) << 8) | (np.asarray(ev["y"]) << 1) | np.asarray(ev["p"])
    pairs = np.stack([addr, np.asarray(ev["t"])], axis=1).astype(">u4")
    path.write_bytes(header + pairs.tobytes())
    return path


def write_aedat31(
    path: Path,
    ev: dict[str, np.ndarray],
    packet_events: int = 64,
    special_packet: bool = True,
    invalid_every: int = 0,
) -> Path:
    """cAER AEDAT 3.1 (DVS128 Gesture): text header, then packets of a 28-byte header
    (type, source, size, tsOffset, tsOverflow, capacity, number, valid) and 8-byte polarity events
    (data = x << 17 | y << 2 | p << 1 | valid, int32 timestamp). Timestamps >= 2**31 use tsOverflow.
    A special-event packet (type 0) comes first when `special_packet`; every `invalid_every`-th
    polarity event has its validity mark cleared (the reader must drop both)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = bytearray(
        b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
        b"#Start-Time: 2017-01-01 00:00:00\r\n#!END-HEADER\r\n"
    )
    if special_packet:
        out += struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 2, 2, 2)
        out += struct.pack("<Ii", (5 << 1) | 1, 0) + struct.pack("<Ii", (7 << 1) | 1, 10)
    t = np.asarray(ev["t"], dtype=np.int64)
    for start in range(0, len(t), packet_events):
        sl = slice(start, start + packet_events)
        overflow = int(t[sl][0] >> 31)
        if np.any((t[sl] >> 31) != overflow):
            raise ValueError("split packets at tsOverflow boundaries")
        valid = np.ones(len(t[sl]), dtype=np.int64)
        if invalid_every:
            valid[(np.arange(start, start + len(valid)) % invalid_every) == invalid_every - 1] = 0
        data = (
            (np.asarray(ev["x"])[sl] << 17)
            | (np.asarray(ev["y"])[sl] << 2)
            | (np.asarray(ev["p"])[sl] << 1)
            | valid
        )
        n = len(data)
        out += struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, n, n, int(valid.sum()))
        words = np.stack([data, t[sl] & 0x7FFFFFFF], axis=1).astype("<u4")
        out += words.tobytes()
    path.write_bytes(bytes(out))
    return path


# AEDAT 4.0: a size-prefixed IOHeader flatbuffer after the magic line, then packets of
# (stream id u32, size u32, size-prefixed EventPacket flatbuffer). Built by hand, uncompressed.


def _aedat4_description(width: int, height: int) -> str:
    return (
        '<dv version="2.0">\n  <node name="outInfo" path="/mainloop/Recorder/outInfo/">\n'
        '    <node name="0" path="/mainloop/Recorder/outInfo/0/">\n'
        '      <attr key="compression" type="string">NONE</attr>\n'
        '      <attr key="typeIdentifier" type="string">EVTS</attr>\n'
        '      <node name="info" path="/mainloop/Recorder/outInfo/0/info/">\n'
        f'        <attr key="sizeX" type="int">{width}</attr>\n'
        f'        <attr key="sizeY" type="int">{height}</attr>\n'
        "      </node>\n    </node>\n  </node>\n</dv>\n"
    )


def _ioheader(description: str) -> bytes:
    # [size][root uoffset][IOHE][vtable 10 bytes][pad][table: soffset, uoffset->string][string]
    text = description.encode() + b"\x00"
    vtable = struct.pack("<HHHHH", 10, 8, 0, 0, 4)  # fields: compression, file_data_position, description
    body = bytearray()
    body += struct.pack("<I", 0)  # root offset, patched below
    body += b"IOHE"
    vt_pos = len(body) + 4
    body += vtable + b"\x00\x00"  # pad to 4
    table_pos = len(body) + 4
    body += struct.pack("<i", table_pos - vt_pos)
    string_pos = table_pos + 8
    body += struct.pack("<I", string_pos - (table_pos + 4))
    body += struct.pack("<I", len(text) - 1) + text
    body += b"\x00" * (-len(body) % 4)
    struct.pack_into("<I", body, 0, table_pos - 4)
    return struct.pack("<I", len(body)) + bytes(body)


def _event_packet(ev: dict[str, np.ndarray]) -> bytes:
    # positions counted from the start of the size prefix so the 16-byte events are 8-aligned
    n = len(ev["t"])
    buf = bytearray(40 + 16 * n)
    struct.pack_into("<I", buf, 0, len(buf) - 4)  # size prefix
    struct.pack_into("<I", buf, 4, 24 - 4)  # root table at 24
    buf[8:12] = b"EVTS"
    struct.pack_into("<HHH", buf, 12, 6, 8, 4)  # vtable at 12: one field (elements) at table + 4
    struct.pack_into("<i", buf, 24, 24 - 12)  # table -> vtable
    struct.pack_into("<I", buf, 28, 36 - 28)  # elements vector at 36
    struct.pack_into("<I", buf, 36, n)
    events = np.zeros(
        n, dtype=np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])
    )
    events["t"], events["x"], events["y"], events["on"] = ev["t"], ev["x"], ev["y"], ev["p"]
    buf[40:] = events.tobytes()
    payload = bytes(buf)
    return struct.pack("<II", 0, len(payload)) + payload


def write_aedat4(
    path: Path, ev: dict[str, np.ndarray], width: int = 128, height: int = 128, packet_events: int = 100
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = bytearray(b"#!AER-DAT4.0\r\n")
    out += _ioheader(_aedat4_description(width, height))
    for start in range(0, len(ev["t"]), packet_events):
        out += _event_packet({k: np.asarray(v)[start : start + packet_events] for k, v in ev.items()})
    path.write_bytes(bytes(out))
    return path


# ---------------------------------------------------------------- whole event datasets


def write_cifar10dvs(
    root: Path,
    per_class: int = 10,
    fmt: str = "aedat",
    classes: list[str] | None = None,
    seed: int = 0,
    n_events: int = 300,
) -> dict[str, dict[str, np.ndarray]]:
    """CIFAR10DVS/<class>/cifar10_<class>_<i>.aedat (or .aedat4); returns {"<class>/<stem>": events}."""
    rng = np.random.default_rng(seed)
    out = {}
    for cls in classes or CIFAR10_CLASSES:
        for i in range(per_class):
            ev = random_events(rng, n_events, 128, 128, 1_000_000, t0=int(rng.integers(0, 10_000)))
            stem = f"cifar10_{cls}_{i}"
            path = root / "CIFAR10DVS" / cls / f"{stem}.{fmt}"
            (write_aedat4 if fmt == "aedat4" else write_aedat2)(path, ev)
            out[f"{cls}/{stem}"] = ev
    return out


def write_nmnist(
    root: Path, train_per_class: int = 3, test_per_class: int = 2, seed: int = 0, n_events: int = 200
) -> dict[str, dict[str, np.ndarray]]:
    """NMNIST/Train/<d>/<nnnnn>.bin and NMNIST/Test/...; returns {"Train/<d>/<stem>": events}."""
    rng = np.random.default_rng(seed)
    out = {}
    k = 0
    for part, per in (("Train", train_per_class), ("Test", test_per_class)):
        for d in range(10):
            for _ in range(per):
                k += 1
                ev = random_events(rng, n_events, 34, 34, 300_000)
                write_bin(root / "NMNIST" / part / str(d) / f"{k:05d}.bin", ev)
                out[f"{part}/{d}/{k:05d}"] = ev
    return out


def write_ncaltech101(
    root: Path, classes: list[str], per_class: int = 10, seed: int = 0, n_events: int = 300
) -> dict[str, dict[str, np.ndarray]]:
    """NCALTECH101/Caltech101/<class>/image_<nnnn>.bin; returns {"<class>/<stem>": events}."""
    rng = np.random.default_rng(seed)
    out = {}
    for cls in classes:
        for i in range(1, per_class + 1):
            ev = random_events(rng, n_events, 240, 180, 300_000)
            write_bin(root / "NCALTECH101" / "Caltech101" / cls / f"image_{i:04d}.bin", ev)
            out[f"{cls}/image_{i:04d}"] = ev
    return out


def write_dvsgesture_original(
    root: Path,
    train_trials: tuple[str, ...] = ("user01_fluorescent", "user02_led"),
    test_trials: tuple[str, ...] = ("user24_lab",),
    gestures: int = 11,
    seed: int = 0,
    per_gesture: int = 120,
    subdir: str = "",
    t0: int = (1 << 31) - 200_000,
) -> dict[str, list[tuple[int, int, int, dict[str, np.ndarray]]]]:
    """DVSGesture/[subdir/] user*.aedat (AEDAT 3.1) + _labels.csv + trials_to_{train,test}.txt.

    Each trial holds `gestures` segments of 100 ms, one per class 1..gestures, 20 ms apart, plus
    noise between segments; timestamps start near 2**31 so tsOverflow is exercised. Returns
    {trial: [(label 0-based, start, end, events of that window)]}."""
    rng = np.random.default_rng(seed)
    folder = root / "DVSGesture" / subdir if subdir else root / "DVSGesture"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for trial in (*train_trials, *test_trials):
        segments, parts = [], []
        t = t0
        for g in range(gestures):
            gap = random_events(rng, 10, 128, 128, 19_000, t0=t + 1)  # between gestures: not in any sample
            t = int(gap["t"][-1]) + 1000
            seg = random_events(rng, per_gesture, 128, 128, 99_999, t0=t)
            segments.append((g, t, t + 100_000, seg))
            parts += [gap, seg]
            t += 100_000
        ev = {k: np.concatenate([p[k] for p in parts]) for k in ("x", "y", "t", "p")}
        cut = np.searchsorted(ev["t"], 1 << 31)  # no packet straddles the overflow
        first = {k: v[:cut] for k, v in ev.items()}
        second = {k: v[cut:] for k, v in ev.items()}
        _write_aedat31_split(folder / f"{trial}.aedat", first, second)
        rows = "".join(f"{g + 1},{a},{b}\n" for g, a, b, _ in segments)
        (folder / f"{trial}_labels.csv").write_text("class,startTime_usec,endTime_usec\n" + rows)
        out[trial] = segments
    (folder / "trials_to_train.txt").write_text("".join(f"{t}.aedat\n" for t in train_trials))
    (folder / "trials_to_test.txt").write_text("".join(f"{t}.aedat\n" for t in test_trials))
    return out


def _write_aedat31_split(path: Path, first: dict, second: dict) -> None:
    write_aedat31(path, first)
    if len(second["t"]):
        tail = path.with_suffix(".tail")
        write_aedat31(tail, second, special_packet=False)
        body = tail.read_bytes()
        path.write_bytes(
            path.read_bytes() + body[body.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n") :]
        )
        tail.unlink()


def write_dvsgesture_npy(
    root: Path,
    train_users: tuple[str, ...] = ("user01_fluorescent", "user02_led"),
    test_users: tuple[str, ...] = ("user24_lab",),
    gestures: int = 11,
    seed: int = 0,
    n_events: int = 150,
) -> dict[str, dict[str, np.ndarray]]:
    """tonic's DVSGesture/ibmGesture{Train,Test}/<user>/<label>.npy, float [N, 4] (x, y, p, t in ms).
    Returns {"ibmGestureTrain/<user>/<label>": events with t in µs}."""
    rng = np.random.default_rng(seed)
    out = {}
    for part, users in (("ibmGestureTrain", train_users), ("ibmGestureTest", test_users)):
        for user in users:
            for g in range(gestures):
                ev = random_events(rng, n_events, 128, 128, 1_500)
                arr = np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1).astype(np.float64)
                path = root / "DVSGesture" / part / user / f"{g}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, arr)
                out[f"{part}/{user}/{g}"] = {**ev, "t": ev["t"] * 1000}
    return out


# ---------------------------------------------------------------- damage


def truncate(path: Path, drop: int = 3) -> Path:
    """Cut the last `drop` bytes (a half-written copy)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - drop])
    return path


def zero(path: Path) -> Path:
    path.write_bytes(b"")
    return path
