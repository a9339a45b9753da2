"""What a native binary is, read from its header (ELF, Mach-O thin and fat/universal2, PE), never
from its name: the check stage audits every binary's architecture with it, and signing picks the
files to sign with it."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# The architectures each format's header codes name.
_ELF_MACHINES = {62: "x86_64", 183: "aarch64", 3: "x86", 40: "arm"}
_MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "aarch64", 7: "x86", 12: "arm"}
_PE_MACHINES = {0x8664: "x86_64", 0xAA64: "aarch64", 0x14C: "x86"}


@dataclass(frozen=True)
class Binary:
    """What a file's header says it is: a format and the architectures it holds."""

    format: str
    archs: tuple[str, ...]


def identify(path: str | Path) -> Binary | None:
    """The binary format and architectures of `path`, or None if it is not a native binary."""
    try:
        with open(path, "rb") as fh:  # noqa: PTH123 - a str from scandir, no Path to parse
            head = fh.read(64)
            if head[:4] == b"\x7fELF" and len(head) >= 20:
                order = "<" if head[5] == 1 else ">"
                (machine,) = struct.unpack(order + "H", head[18:20])
                return Binary("ELF", (_ELF_MACHINES.get(machine, f"machine {machine}"),))
            if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe") and len(head) >= 8:
                (cpu,) = struct.unpack("<I", head[4:8])
                return Binary("Mach-O", (_MACHO_CPUS.get(cpu, f"cpu {cpu:#x}"),))
            if head[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf") and len(head) >= 8:
                return _fat(fh, head)
            if head[:2] == b"MZ" and len(head) >= 64:
                (offset,) = struct.unpack("<I", head[60:64])
                fh.seek(offset)
                pe = fh.read(6)
                if pe[:4] == b"PE\0\0" and len(pe) == 6:
                    (machine,) = struct.unpack("<H", pe[4:6])
                    return Binary("PE", (_PE_MACHINES.get(machine, f"machine {machine:#x}"),))
    except OSError:
        return None
    return None


def _fat(fh: BinaryIO, head: bytes) -> Binary | None:
    """A universal (fat) Mach-O; Java class files share the magic but not a small arch count."""
    (count,) = struct.unpack(">I", head[4:8])
    if not 0 < count < 30:
        return None
    entry = 32 if head[3] == 0xBF else 20
    fh.seek(8)
    table = fh.read(entry * count)
    if len(table) < entry * count:
        return None
    archs = []
    for i in range(count):
        (cpu,) = struct.unpack(">I", table[i * entry : i * entry + 4])
        archs.append(_MACHO_CPUS.get(cpu, f"cpu {cpu:#x}"))
    return Binary("Mach-O", tuple(archs))
