"""Environment facts: CPU model and flags parsed from cpuinfo text, versions from metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

from core.runtimes.environment import (
    CPU_FLAGS,
    cpu_flags,
    environment_info,
    flags_from,
    has_vnni,
    package_versions,
    parse_cpuinfo,
)

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2
"""

ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes asimddp i8mm sve
CPU implementer\t: 0x41
"""


def test_parse_x86_cpuinfo_uses_the_first_processor() -> None:
    model, flags = parse_cpuinfo(X86_CPUINFO)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"  # not "143" from the "model" line
    f = flags_from(flags)
    assert f["avx2"] and f["avx512f"] and f["avx512_vnni"] and f["amx"] and f["amx_int8"] and f["f16c"]
    assert not f["avx_vnni"] and not f["avx512_fp16"] and not f["amx_bf16"] and not f["neon"]
    assert has_vnni(f)


def test_parse_arm_cpuinfo() -> None:
    model, flags = parse_cpuinfo(ARM_CPUINFO)
    assert model is None
    f = flags_from(flags)
    assert f["neon"] and f["dotprod"] and f["i8mm"] and f["sve"]
    assert not f["avx2"]
    assert not has_vnni(f)


def test_unknown_cpu_has_every_flag_false() -> None:
    f = flags_from(parse_cpuinfo("")[1])
    assert set(f) == set(CPU_FLAGS) and not any(f.values())


def test_avx_vnni_alone_counts_as_vnni() -> None:
    assert has_vnni(flags_from({"avx2", "avx_vnni"}))


def test_cpu_flags_is_cached_and_complete() -> None:
    first = cpu_flags()
    assert set(first) == set(CPU_FLAGS)
    assert all(isinstance(v, bool) for v in first.values())
    assert cpu_flags() == first


def test_environment_info_contents() -> None:
    info = environment_info(threads=3)
    assert info["threads"] == 3
    assert isinstance(info["cpu"], str) and info["cpu"]
    assert info["cpu_count"] >= 1
    assert info["python"] == ".".join(str(p) for p in sys.version_info[:3])
    assert info["has_vnni"] == has_vnni(info["flags"])
    versions = info["versions"]
    assert versions["numpy"] == metadata.version("numpy")
    assert versions["scikit-learn"] == metadata.version("scikit-learn")
    assert versions["torch"] == metadata.version("torch")
    assert set(versions) == set(package_versions())
    json.dumps(info, allow_nan=False)


def test_environment_info_imports_none_of_the_libraries() -> None:
    code = (
        "import sys; from core.runtimes.environment import environment_info; environment_info(1); "
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'sklearn', 'PySide6') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
