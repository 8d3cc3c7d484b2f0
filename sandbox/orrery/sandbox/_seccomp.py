"""A seccomp-BPF deny list, built by hand so the worker needs no library.

The filter kills the process on a foreign architecture/ABI and answers ``EPERM`` for:

- syscalls a plugin never needs (ptrace, mount, kexec, reboot, module loading, namespace
  changes, bpf, io_uring, ...), including ``clone`` with a namespace flag (``clone3``
  answers ``ENOSYS`` so that libc falls back to ``clone``, whose flags can be checked);
- file metadata changes (the chmod, chown, utime and xattr families): Landlock does not
  cover them, so without this a plugin could chmod the API token or the watched plugin
  folder, or set a setuid bit, on any file it can reach.

``socket()`` answers ``EACCES`` for address families the plugin is not granted: IPv4,
IPv6, packet and netlink sockets need ``net``; unix-domain sockets need ``net.unix:PATH``
(a pathname socket such as PostgreSQL's logs in by peer credentials, so ``net`` alone does
not grant it; ``socketpair`` stays allowed); vsock needs ``net.vsock``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from collections.abc import Iterable

__all__ = [
    "DENIED_SYSCALLS",
    "METADATA_SYSCALLS",
    "denied_families",
    "install_filter",
    "seccomp_supported",
]

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000
_NONE = -1  # the syscall does not exist on that architecture

# name -> (x86_64, aarch64)
DENIED_SYSCALLS: dict[str, tuple[int, int]] = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "unshare": (272, 97),
    "setns": (308, 268),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "reboot": (169, 142),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "acct": (163, 89),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "clock_adjtime": (305, 266),
    "adjtimex": (159, 171),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
    "quotactl": (179, 60),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "syslog": (103, 116),
    "vhangup": (153, 58),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
}
#: Metadata changes, denied everywhere (name -> (x86_64, aarch64)).
METADATA_SYSCALLS: dict[str, tuple[int, int]] = {
    "chmod": (90, _NONE),
    "fchmod": (91, 52),
    "fchmodat": (268, 53),
    "fchmodat2": (452, 452),
    "chown": (92, _NONE),
    "fchown": (93, 55),
    "lchown": (94, _NONE),
    "fchownat": (260, 54),
    "utime": (132, _NONE),
    "utimes": (235, _NONE),
    "futimesat": (261, _NONE),
    "utimensat": (280, 88),
    "setxattr": (188, 5),
    "lsetxattr": (189, 6),
    "fsetxattr": (190, 7),
    "setxattrat": (463, 463),
    "removexattr": (197, 14),
    "lremovexattr": (198, 15),
    "fremovexattr": (199, 16),
    "removexattrat": (466, 466),
}
_SOCKET = (41, 198)
_CLONE = (56, 220)
_CLONE3 = (435, 435)
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000
_AF_UNIX, _AF_INET, _AF_INET6, _AF_NETLINK, _AF_PACKET, _AF_VSOCK = 1, 2, 10, 16, 17, 40

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_KILL_PROCESS = 0x80000000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_EPERM, _EACCES, _ENOSYS = 1, 13, 38
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


def seccomp_supported() -> bool:
    """Whether this architecture has a filter table here."""
    return platform.machine() in _AUDIT_ARCH


def denied_families(*, net: bool, unix: bool, vsock: bool) -> tuple[int, ...]:
    """The socket address families a plugin with these grants may not create."""
    out: list[int] = []
    if not net:
        out += [_AF_INET, _AF_INET6, _AF_PACKET, _AF_NETLINK]
    if not unix:
        out.append(_AF_UNIX)
    if not vsock:
        out.append(_AF_VSOCK)
    return tuple(sorted(out))


def _program(arch: str, families: Iterable[int]) -> list[tuple[int, int, int, int]]:
    index = 0 if arch == "x86_64" else 1
    denied = sorted(
        {nrs[index] for table in (DENIED_SYSCALLS, METADATA_SYSCALLS) for nrs in table.values()}
        - {_NONE}
    )
    families = sorted(set(families))
    # Layout (jt/jf are forward offsets from the next instruction):
    #   ld arch; jeq ARCH ? +1 : kill; ret kill; ld nr; [x32 check]; jeq nr_i -> deny ...;
    #   jeq clone -> clone block; jeq clone3 -> enosys; [jeq socket -> socket block];
    #   ret allow; blocks; deny: ret errno(EPERM)
    body: list[tuple[int, int, int, int] | tuple[str, str, int]] = []
    body.append((_LD_W_ABS, 0, 0, 4))
    body.append((_JEQ_K, 1, 0, _AUDIT_ARCH[arch]))
    body.append((_RET_K, 0, 0, _RET_KILL_PROCESS))
    body.append((_LD_W_ABS, 0, 0, 0))
    if arch == "x86_64":
        body.append(("jge", "deny", _X32_SYSCALL_BIT))
    for nr in denied:
        body.append(("jeq", "deny", nr))
    body.append(("jeq", "clone", _CLONE[index]))
    body.append(("jeq", "enosys", _CLONE3[index]))
    if families:
        body.append(("jeq", "socket", _SOCKET[index]))
    body.append((_RET_K, 0, 0, _RET_ALLOW))
    labels: dict[str, int] = {"clone": len(body)}
    body.append((_LD_W_ABS, 0, 0, 16))  # args[0] (flags), low 32 bits (little endian)
    body.append(("jset", "deny", _CLONE_NS_FLAGS))
    body.append((_RET_K, 0, 0, _RET_ALLOW))
    labels["enosys"] = len(body)
    body.append((_RET_K, 0, 0, _RET_ERRNO | _ENOSYS))
    if families:
        labels["socket"] = len(body)
        body.append((_LD_W_ABS, 0, 0, 16))  # args[0] (family)
        for family in families:
            body.append(("jeq", "eacces", family))
        body.append((_RET_K, 0, 0, _RET_ALLOW))
        labels["eacces"] = len(body)
        body.append((_RET_K, 0, 0, _RET_ERRNO | _EACCES))
    labels["deny"] = len(body)
    body.append((_RET_K, 0, 0, _RET_ERRNO | _EPERM))
    program: list[tuple[int, int, int, int]] = []
    ops = {"jeq": _JEQ_K, "jge": _JGE_K, "jset": _JSET_K}
    for i, ins in enumerate(body):
        if isinstance(ins[0], str):
            op, label, k = ins
            offset = labels[str(label)] - i - 1
            if offset > 255:
                raise ValueError("seccomp program too long for a short jump")
            program.append((ops[str(op)], offset, 0, int(k)))
        else:
            program.append(ins)
    return program


def install_filter(*, deny_families: Iterable[int]) -> int:
    """Install the filter on the calling thread (and its future children).

    ``deny_families`` comes from `denied_families`. Call it before any thread starts.
    Returns the number of denied syscalls. Raises `OSError` when the kernel refuses it.
    """
    arch = platform.machine()
    if arch not in _AUDIT_ARCH:
        raise OSError(f"no seccomp syscall table for architecture {arch!r}")
    program = _program(arch, deny_families)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class _Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Fprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(NO_NEW_PRIVS) failed: {os.strerror(err)}")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP) failed: {os.strerror(err)}")
    return len(DENIED_SYSCALLS) + len(METADATA_SYSCALLS) + 2  # + clone (ns), clone3
