"""Issue #12: files whose sizes would take memory without bound are refused before they are read.

Each grew the study process past 6 GB until it was killed: a PyTorch zip or an .npz whose
member inflates to gigabytes (a deflate bomb, or a header that lies about its sizes), an
.npz member whose .npy header claims a huge array, an .npz member that is not an array at
all, and a CSV file of tens of millions of rows. Every hostile file here is built in
``tmp_path`` and is small (a few MB at most) while it claims, or would inflate to,
gigabytes. Each refusal runs in a fresh Python process, whose peak RSS (``ru_maxrss`` from
``os.wait4``, which covers the process and the children it waited for) must stay under
``PEAK_LIMIT``: the bombs inflate to at least twice that, so reading one would fail the test.
One case per kind also runs the real ``quantbench run`` command: exit 2, one line on
stderr naming the file, no traceback.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import core.datasets.csv as csv_loader
from core.datasets import load_dataset
from core.errors import BadInput
from core.models.limits import MAX_COMPRESSION_RATIO
from core.study.spec import CALIBRATE_ON_SAME, DatasetKind, DatasetSpec

REPO = Path(__file__).resolve().parents[2]
#: What a refusing process may peak at: far below what any bomb here inflates to.
PEAK_LIMIT = 1 << 30
#: What the bombs inflate to (twice PEAK_LIMIT) or claim.
GIB = 1 << 30
BOMB = 2 * GIB


# ----------------------------------------------------------------------------- building hostile zips


@dataclass
class Member:
    """One zip member as written: ``data`` as stored, with whatever sizes the directory should claim.

    A deflated member's CRC is left 0: it never matters here, since every such member must be
    refused before a byte of it is inflated (the old loaders inflated it all, then found the CRC bad).
    """

    name: str
    data: bytes
    method: int = zipfile.ZIP_STORED
    size: int | None = None  # declared uncompressed size (default: honest for stored data)
    packed: int | None = None  # declared compressed size (default: len(data))
    crc: int = 0


def write_zip(path: Path, members: list[Member]) -> Path:
    """A zip archive whose local headers and central directory say exactly what ``members`` claim.

    zipfile would recompute sizes and CRCs, so lying archives are written by hand (zip64
    extra fields where a size passes 4 GiB).
    """
    out, central = bytearray(), bytearray()
    for m in members:
        name = m.name.encode()
        size = len(m.data) if m.size is None else m.size
        packed = len(m.data) if m.packed is None else m.packed
        crc = zlib.crc32(m.data) if m.method == zipfile.ZIP_STORED and m.size is None else m.crc
        big = size >= 0xFFFFFFFF or packed >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, packed) if big else b""
        size32, packed32, version = (0xFFFFFFFF, 0xFFFFFFFF, 45) if big else (size, packed, 20)
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, version, 0, m.method, 0, 0x21, crc, packed32, size32,
                           len(name), len(extra)) + name + extra + m.data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, 0, m.method, 0, 0x21, crc,
                               packed32, size32, len(name), len(extra), 0, 0, 0, 0, offset) + name + extra
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out + central + end))
    return path


def deflated(prefix: bytes, zeros: int) -> bytes:
    """A raw deflate stream of ``prefix`` then ``zeros`` zero bytes (a multiple of 1 MiB), built without them.

    After a full flush deflate starts afresh, so every 1 MiB run of zeros compresses to the
    same block: the stream for gigabytes is that block repeated (about 1 KiB per MiB).
    """
    chunk = 1 << 20
    assert zeros % chunk == 0
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = z.compress(prefix) + z.flush(zlib.Z_FULL_FLUSH)
    block = z.compress(b"\0" * chunk) + z.flush(zlib.Z_FULL_FLUSH)
    assert z.compress(b"\0" * chunk) + z.flush(zlib.Z_FULL_FLUSH) == block
    return head + block * (zeros // chunk) + z.flush()


def npy_header(shape: tuple[int, ...], descr: str = "<f4", version: int = 1) -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (117 - len(header)) + b"\n"
    length = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header


def float_bomb(name: str = "x.npy", inflated: int = BOMB) -> Member:
    """An honest deflate bomb: a .npy of ``inflated`` bytes of float32 zeros in about 1/1000 of that."""
    header = npy_header((inflated // 4,))
    return Member(name, deflated(header, inflated), zipfile.ZIP_DEFLATED, size=len(header) + inflated)


def state_dict_members(tmp: Path) -> list[Member]:
    """The members of a real ``torch.save`` of a small state dict, as written (stored)."""
    import torch

    tmp.mkdir(parents=True, exist_ok=True)
    torch.save({"w": torch.zeros(16)}, str(tmp / "real.pt"))
    with zipfile.ZipFile(tmp / "real.pt") as zf:
        members = [Member(i.filename, zf.read(i), i.compress_type) for i in zf.infolist()]
    (tmp / "real.pt").unlink()
    return members


def _replace(members: list[Member], suffix: str, new: Member) -> list[Member]:
    """``members`` with the one whose name ends in ``suffix`` replaced by ``new`` under the same name."""
    new.name = next(m.name for m in members if m.name.endswith(suffix))
    return [new if m.name == new.name else m for m in members]


# ----------------------------------------------------------------------------- measuring a refusal


@dataclass
class Done:
    code: int
    out: str
    err: str
    peak: int  # bytes: the highest RSS of the process and of every child it waited for


#: Runs the command given and writes its exit code and peak RSS: a process's ``ru_maxrss`` starts from
#: the size of whatever exec'd it, so the measured command must be started by a small process, not pytest.
_LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)  # Popen.wait would drop the rusage
with open(sys.argv[1], "w") as fh:
    fh.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss * 1024}")
"""


def measured(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> Done:
    """Run ``argv`` from the repository root: its exit code, output and peak RSS.

    The peak is ``ru_maxrss`` from ``os.wait4``, which also covers the children the command
    waited for (a study's process, for ``quantbench run``).
    """
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "rusage"
        done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(report), *argv], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout)
        code, peak = (int(v) for v in report.read_text().split())
    return Done(code, done.stdout, done.stderr, peak)


#: One BLAS thread: its per-thread buffers would otherwise count against the memory ceiling tested below.
_QUIET_ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
_REFUSE = """
import json, sys
from core.errors import BadInput
{prelude}
kind, target, arch = sys.argv[1], sys.argv[2], sys.argv[3] or None
try:
    if kind == "model":
        from core.models import load_model
        from core.study.spec import ModelSpec
        load_model(ModelSpec(path=target, arch=arch))
    else:
        from core.datasets import load_dataset
        from core.study.spec import DatasetSpec
        load_dataset(DatasetSpec.parse(target))
except BadInput as exc:
    print(json.dumps(str(exc)))
    sys.exit(2)
print(json.dumps(None))
"""


def refusal(what: str, kind: str, target: str, arch: str = "", prelude: str = "") -> str:
    """Load ``target`` through the public API in a fresh process; its BadInput message.

    The process's peak RSS is checked first, so a file read before it is judged fails here
    on memory, whatever it is then refused for.
    """
    done = measured([sys.executable, "-c", _REFUSE.format(prelude=prelude), kind, target, arch], _QUIET_ENV)
    assert_small(done.peak, what)
    assert done.code == 2, f"not refused (exit {done.code}): {done.out}{done.err}"
    assert "Traceback" not in done.err, done.err
    return json.loads(done.out)


def assert_small(peak: int, what: str) -> None:
    print(f"peak RSS refusing {what}: {peak / 2**20:.0f} MiB")  # the figure the issue asked for (-s shows it)
    assert peak < PEAK_LIMIT, f"refusing {what} peaked at {peak / 2**20:.0f} MiB"


def assert_one_sentence(message: str, names: Path, expect: str) -> None:
    assert expect in message, message
    assert str(names) in message, "the message names the file"
    assert "\n" not in message and message.endswith("."), "one sentence"
    assert len(message) < 600, message


def quantbench(args: list[str], home: Path) -> Done:
    env = {**os.environ, "QUANTBENCH_HOME": str(home)}
    fast = ["--scheme", "fp32", "--quiet", "--max-time", "0.05", "--threads", "1"]
    return measured([sys.executable, "-m", "core.cli", "run", *args, *fast], env)


def command_refusal(what: str, args: list[str], home: Path) -> str:
    """``quantbench run ARGS``, which must exit 2 with one line and no traceback, within the peak; that line."""
    done = quantbench(args, home)
    assert_small(done.peak, what)
    assert done.code == 2, done.err
    lines = done.err.splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith("quantbench: ")
    assert "Traceback" not in done.err + done.out
    return lines[0]


# ----------------------------------------------------------------------------- PyTorch zips


def test_torch_saves_members_stored_so_a_deflated_one_is_foreign(tmp_path: Path) -> None:
    """What the rule rests on: torch.save writes every member uncompressed."""
    members = state_dict_members(tmp_path)
    assert members and {m.method for m in members} == {zipfile.ZIP_STORED}


def torch_bomb(tmp: Path) -> Path:
    """A real state dict whose tensor member is a 2 GiB deflate bomb (2 MB on disk, sizes honest)."""
    members = _replace(state_dict_members(tmp), "data/0", Member("", deflated(b"", BOMB), zipfile.ZIP_DEFLATED,
                                                                  size=BOMB))
    return write_zip(tmp / "bomb.pt", members)


def test_torch_deflate_bomb_is_refused_before_torch_reads_it(tmp_path: Path) -> None:
    path = torch_bomb(tmp_path)
    assert path.stat().st_size < 4 << 20
    message = refusal("a .pt deflate bomb", "model", str(path), "demo")
    assert_one_sentence(message, path, "refused as a decompression bomb")
    assert "data/0" in message


def test_torch_member_whose_header_understates_its_size(tmp_path: Path) -> None:
    """The directory says 64 bytes, the stream inflates to 2 GiB: refused from the sizes, nothing inflated."""
    members = _replace(state_dict_members(tmp_path), "data/0",
                       Member("", deflated(b"", BOMB), zipfile.ZIP_DEFLATED, size=64))
    path = write_zip(tmp_path / "lying.pt", members)
    message = refusal("a .pt member that lies about its size", "model", str(path), "demo")
    assert_one_sentence(message, path, "its sizes are a lie")


def test_torch_stored_member_claiming_more_than_the_archive_holds(tmp_path: Path) -> None:
    members = _replace(state_dict_members(tmp_path), "data/0",
                       Member("", b"\0" * 64, size=8 * GIB, packed=8 * GIB))
    path = write_zip(tmp_path / "claims.pt", members)
    message = refusal("a .pt stored member claiming 8 GiB", "model", str(path), "demo")
    assert_one_sentence(message, path, "but the archive is only")


def test_torch_members_beyond_memory_are_refused(tmp_path: Path) -> None:
    """A plausible ratio (300:1) but more than memory holds: refused by the declared total."""
    members = _replace(state_dict_members(tmp_path), "data/0",
                       Member("", os.urandom(4 << 20), zipfile.ZIP_DEFLATED, size=300 * (4 << 20)))
    path = write_zip(tmp_path / "heavy.pt", members)
    prelude = "import core.models.limits as L; L.available_memory_bytes = lambda: 512 << 20"
    message = refusal("a .pt whose members exceed memory", "model", str(path), "demo", prelude)
    assert_one_sentence(message, path, "unpacking its members would need 1.2 GiB but only 0.5 GiB")


def test_the_command_refuses_a_torch_bomb(tmp_path: Path) -> None:
    path = torch_bomb(tmp_path / "case")
    line = command_refusal("a .pt deflate bomb (quantbench run)",
                           ["--model", str(path), "--arch", "demo", "--dataset", "synthetic:4"], tmp_path / "home")
    assert_one_sentence(line, path, "refused as a decompression bomb")


# ----------------------------------------------------------------------------- .npz and .npy


def npz(path: Path, *members: Member) -> str:
    write_zip(path, list(members))
    return f"npz:{path}"


def test_npz_deflate_bomb(tmp_path: Path) -> None:
    spec = npz(tmp_path / "bomb.npz", float_bomb())
    message = refusal("an .npz deflate bomb", "dataset", spec)
    assert_one_sentence(message, tmp_path / "bomb.npz", "member 'x.npy' would inflate from 2.0 MiB to 2.0 GiB")
    assert "decompression bomb" in message


def test_npz_bomb_behind_a_damaged_label_array(tmp_path: Path) -> None:
    """A header that failed to parse used to switch every check off, the bomb's included."""
    spec = npz(tmp_path / "bomb.npz", float_bomb(), Member("y.npy", b"\x93NUMPY garbage"))
    message = refusal("an .npz bomb beside a damaged member", "dataset", spec)
    assert_one_sentence(message, tmp_path / "bomb.npz", "decompression bomb")


def test_npz_member_whose_header_understates_its_size(tmp_path: Path) -> None:
    header = npy_header((1024,))
    member = Member("x.npy", deflated(header, BOMB), zipfile.ZIP_DEFLATED, size=len(header) + 4096)
    spec = npz(tmp_path / "lying.npz", member)
    message = refusal("an .npz member that lies about its size", "dataset", spec)
    assert_one_sentence(message, tmp_path / "lying.npz", "its sizes are a lie")


def test_npz_stored_member_claiming_more_than_the_archive_holds(tmp_path: Path) -> None:
    header = npy_header((2 * GIB,))
    member = Member("x.npy", header + b"\0" * 64, size=len(header) + 8 * GIB, packed=len(header) + 8 * GIB)
    spec = npz(tmp_path / "claims.npz", member)
    message = refusal("an .npz stored member claiming 8 GiB", "dataset", spec)
    assert_one_sentence(message, tmp_path / "claims.npz", "claims 8.0 GiB of data but the archive is only")


@pytest.mark.parametrize("name", ["x.npy", "x"])
def test_npz_stored_header_claiming_a_huge_array(tmp_path: Path, name: str) -> None:
    """Honest zip sizes, a .npy header claiming 8 GiB in 64 bytes; a member named plain 'x' used to go unchecked."""
    spec = npz(tmp_path / "claims.npz", Member(name, npy_header((2 * GIB,)) + b"\0" * 64))
    message = refusal(f"an .npz header claiming 8 GiB (member {name!r})", "dataset", spec)
    assert_one_sentence(message, tmp_path / "claims.npz", "(8589934592 bytes) but the file holds only 64 bytes")


def test_npz_member_holding_more_than_its_header_declares(tmp_path: Path) -> None:
    spec = npz(tmp_path / "extra.npz", Member("x.npy", npy_header((4, 4)) + b"\0" * 4096))
    message = refusal("an .npz member longer than its array", "dataset", spec)
    assert_one_sentence(
        message, tmp_path / "extra.npz", "declares 4x4 float32 values (64 bytes) but the file holds 4096"
    )


def test_npz_member_of_raw_bytes(tmp_path: Path) -> None:
    """numpy hands back a member that is not a .npy as bytes: it used to end in an AttributeError."""
    spec = npz(tmp_path / "raw.npz", Member("x", b"just some bytes, not an array at all"))
    message = refusal("an .npz member of raw bytes", "dataset", spec)
    assert_one_sentence(message, tmp_path / "raw.npz", "member 'x' (array 'x') is raw bytes, not a .npy array")


def test_npz_raw_member_that_is_a_bomb(tmp_path: Path) -> None:
    """...and read the whole of it first: 2 GiB of zeros, then 3 GB peak, then the crash."""
    spec = npz(tmp_path / "raw.npz", Member("x", deflated(b"", BOMB), zipfile.ZIP_DEFLATED, size=BOMB))
    message = refusal("an .npz raw member that is a bomb", "dataset", spec)
    assert_one_sentence(message, tmp_path / "raw.npz", "member 'x' would inflate")


def test_npz_member_that_is_itself_a_zip(tmp_path: Path) -> None:
    """An .npz inside an .npz (holding a bomb, at that): numpy returned its bytes, then the loader crashed."""
    inner = write_zip(tmp_path / "inner.zip", [float_bomb()]).read_bytes()
    spec = npz(tmp_path / "nested.npz", Member("x.npy", inner))
    message = refusal("an .npz member that is a zip", "dataset", spec)
    assert_one_sentence(message, tmp_path / "nested.npz", "member 'x.npy' (array 'x') is itself a zip archive")


def test_npz_member_compressed_with_an_unbounded_method(tmp_path: Path) -> None:
    """zipfile inflates bzip2 and LZMA in steps of any size; numpy never writes them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("x.npy", npy_header((4,)) + b"\0" * 16)
    (tmp_path / "bz.npz").write_bytes(buffer.getvalue())
    message = refusal("an .npz bzip2 member", "dataset", f"npz:{tmp_path / 'bz.npz'}")
    assert_one_sentence(message, tmp_path / "bz.npz", "zip method 12")


@pytest.mark.parametrize("bare", [True, False], ids=["npy", "npz"])
def test_npy_header_whose_length_claims_gigabytes(tmp_path: Path, bare: bool) -> None:
    """numpy reads a header's declared length before it checks it: 4 GiB here, refused unread."""
    data = b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{'descr': '<f4'"
    if bare:
        (tmp_path / "long.npy").write_bytes(data)
        target = tmp_path / "long.npy"
        spec = f"npz:{target}"
    else:
        target = tmp_path / "long.npz"
        spec = npz(target, Member("x.npy", data))
    message = refusal(f"a .npy header claiming 4 GiB ({target.suffix})", "dataset", spec)
    assert_one_sentence(message, target, "a header of 4294967280 bytes")


def test_npz_claim_beyond_the_memory_ceiling(tmp_path: Path) -> None:
    """Inside a study's child (RLIMIT_DATA, --max-memory) the ceiling, not the machine, is what is free."""
    header = npy_header((BOMB // 4,))
    member = Member("x.npy", zlib.compress(header + os.urandom(4 << 20))[2:-4], zipfile.ZIP_DEFLATED,
                    size=len(header) + BOMB)  # 512:1, which real data could reach
    spec = npz(tmp_path / "heavy.npz", member)
    prelude = (
        "import numpy, resource\n"  # imported first: the ceiling is for what the file asks
        "resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, resource.getrlimit(resource.RLIMIT_DATA)[1]))"
    )
    message = refusal("an .npz beyond the memory ceiling", "dataset", spec, prelude=prelude)
    assert_one_sentence(message, tmp_path / "heavy.npz", "this process may use only 1.0 GiB (its memory ceiling")


def test_compressed_npz_of_real_data_still_loads(tmp_path: Path) -> None:
    """The rules leave what numpy writes alone, even a constant label array (small: exempt from the ratio)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 64)).astype(np.float32)
    np.savez_compressed(tmp_path / "real.npz", x=x, y=np.zeros(2000, np.int64))
    # Every sample kept (nothing held out for calibration): the file is read exactly as numpy wrote it.
    ds = load_dataset(DatasetSpec(DatasetKind.NPZ, str(tmp_path / "real.npz"), calibration=CALIBRATE_ON_SAME))
    assert np.array_equal(ds.x, x) and ds.y is not None and len(ds.y) == 2000
    with zipfile.ZipFile(tmp_path / "real.npz") as zf:
        assert all(i.file_size < MAX_COMPRESSION_RATIO * i.compress_size for i in zf.infolist())


def test_the_command_refuses_npz_bombs(tmp_path: Path, kit: SimpleNamespace) -> None:
    model = kit.make_mlp_onnx(tmp_path / "fine" / "mlp.onnx")
    bomb = tmp_path / "case" / "bomb.npz"
    raw = tmp_path / "case" / "raw.npz"
    npz(bomb, float_bomb())
    npz(raw, Member("x", b"raw bytes"), Member("y.npy", npy_header((1,), "<i8") + b"\0" * 8))
    for path, expect in ((bomb, "refused as a decompression bomb"), (raw, "is raw bytes, not a .npy array")):
        line = command_refusal(f"{path.name} (quantbench run)", ["--model", str(model), "--dataset", f"npz:{path}"],
                               tmp_path / "home")
        assert_one_sentence(line, path, expect)


# ----------------------------------------------------------------------------- CSV


def test_csv_past_the_row_cap_names_the_row_reached(tmp_path: Path) -> None:
    path = tmp_path / "tall.csv"
    path.write_bytes(b"a,b,label\n" + b"1,2,0\n" * 5000)
    prelude = "import core.datasets.csv as c; c.MAX_ROWS = 1000"
    message = refusal("a CSV past the row cap", "dataset", f"csv:{path}", prelude=prelude)
    assert_one_sentence(message, path, "more than 1,000 data rows (reading stopped at row 1002)")
    assert "--limit N" in message


def test_csv_beyond_memory_is_refused_while_streaming(tmp_path: Path) -> None:
    """The budget is checked as rows arrive; a file is never read whole before it is judged."""
    path = tmp_path / "wide.csv"
    path.write_bytes(b"1,2,3,0\n" * 200_000)
    prelude = "import core.models.limits as L; L.memory_budget_bytes = lambda: 2 << 20"
    message = refusal("a CSV beyond the memory budget", "dataset", f"csv:{path}", prelude=prelude)
    assert_one_sentence(message, path, "its first 65,536 rows of 4 values (up to line 65536) already need 3.0 MiB")
    assert "but only 2.0 MiB of memory can be spared" in message


def test_csv_line_longer_than_any_row_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """csv's field limit does not bound a line of many short fields; the line limit does."""
    monkeypatch.setattr(csv_loader, "MAX_LINE_CHARS", 1000)
    path = tmp_path / "long.csv"
    path.write_bytes(b"1,2,0\n" + b"1," * 5000 + b"0\n")
    with pytest.raises(BadInput) as info:
        load_dataset(DatasetSpec(DatasetKind.CSV, str(path)))
    assert_one_sentence(str(info.value), path, "line 2 is longer than 1,000 characters")


def test_csv_limit_reads_only_the_first_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a sample limit the rest is never read: not its row count, not its damage."""
    monkeypatch.setattr(csv_loader, "MAX_ROWS", 100)
    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b,label\n" + b"1,2,0\n3,4,1\n" * 5000 + b"oops,\x00,\xff\xfe\n")  # 60 KB, then damage
    # Every row read kept (nothing held out for calibration), so the rows read are the rows evaluated.
    ds = load_dataset(DatasetSpec(DatasetKind.CSV, str(path), limit=40, calibration=CALIBRATE_ON_SAME))
    assert ds.x.shape == (40, 2) and ds.y is not None and ds.y.tolist() == [0, 1] * 20
    assert any("first 40 rows" in n and "not read" in n for n in ds.notes), ds.notes
    past_the_cap = load_dataset(DatasetSpec(DatasetKind.CSV, str(path), limit=1000))  # asked for: not capped
    assert len(past_the_cap) == 1000
    with pytest.raises(BadInput, match="more than 100 data rows"):
        load_dataset(DatasetSpec(DatasetKind.CSV, str(path)))


@pytest.fixture(scope="module")
def past_the_cap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV one row past the real ``MAX_ROWS`` (about 20 MB: each row is "0,1")."""
    path = tmp_path_factory.mktemp("tall") / "tall.csv"
    path.write_bytes(b"0,1\n" * (csv_loader.MAX_ROWS + 1))
    return path


def _one_feature_model(path: Path) -> Path:
    """x [batch, 1] -> MatMul -> y [batch, 2]: what a row "0,1" (a feature, a label) feeds."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(np.ones((1, 2), np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_the_command_refuses_a_csv_past_the_real_cap(tmp_path: Path, past_the_cap: Path) -> None:
    model = _one_feature_model(tmp_path / "one.onnx")
    line = command_refusal(f"a CSV of {csv_loader.MAX_ROWS + 1:,} rows (quantbench run)",
                           ["--model", str(model), "--dataset", f"csv:{past_the_cap}"], tmp_path / "home")
    assert_one_sentence(line, past_the_cap, f"more than {csv_loader.MAX_ROWS:,} data rows")


def test_the_command_reads_the_first_rows_of_that_csv_with_limit(tmp_path: Path, past_the_cap: Path) -> None:
    model = _one_feature_model(tmp_path / "one.onnx")
    done = quantbench(["--model", str(model), "--dataset", f"csv:{past_the_cap}", "--limit", "16",
                       "--json", str(tmp_path / "out.json")], tmp_path / "home")
    assert done.code == 0, done.err
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["dataset"]["samples"] == 16
    assert done.peak < PEAK_LIMIT
