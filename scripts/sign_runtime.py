"""The sign command CI gives `runenv build --sign-command`: signs one runtime's binaries.

runenv runs it as `python scripts/sign_runtime.py LISTFILE` after the audit and before the
pack, with `RUNENV_SIGN_PLATFORM` set to the target's platform key; LISTFILE holds the path
of every binary of the tree, one per line. By target and by the machine it runs on:

- macOS targets: every Mach-O is signed with the Developer ID certificate (hardened runtime,
  secure timestamp), then all of them are sent, zipped, to Apple's notary service and waited
  for. On macOS with `codesign` and `xcrun notarytool`; on Linux (cross builds) with
  `rcodesign sign` and `rcodesign notary-submit` (https://github.com/indygreg/apple-platform-rs).
- Windows targets: every .exe/.dll/.pyd is Authenticode-signed with a timestamp: `signtool`
  on Windows, `osslsigncode` on Linux.
- Linux targets: nothing to sign.

A target whose credentials are not in the environment is skipped with a GitHub notice (the
workflow passes the repository's secrets, which are empty when it has none); a failing tool
exits non-zero, and runenv then fails the build with nothing published. Standard library only.

Environment (the workflow's secrets): MACOS_CERTIFICATE_P12 (base64 .p12),
MACOS_CERTIFICATE_PASSWORD, MACOS_SIGN_IDENTITY ("Developer ID Application: ..."),
APPLE_API_KEY_P8 (base64 .p8), APPLE_API_KEY_ID, APPLE_API_ISSUER; WINDOWS_CERTIFICATE_PFX
(base64 .pfx), WINDOWS_CERTIFICATE_PASSWORD; TIMESTAMP_URL (default DigiCert's).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

TIMESTAMP_URL = "http://timestamp.digicert.com"
_MACOS = ("MACOS_CERTIFICATE_P12", "MACOS_CERTIFICATE_PASSWORD", "APPLE_API_KEY_P8",
          "APPLE_API_KEY_ID", "APPLE_API_ISSUER")  # fmt: skip
_WINDOWS = ("WINDOWS_CERTIFICATE_PFX", "WINDOWS_CERTIFICATE_PASSWORD")


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd[:2]), "...", flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def _secret_file(tmp: Path, name: str, env: str) -> Path:
    path = tmp / name
    path.write_bytes(base64.b64decode(os.environ[env]))
    return path


def sign_macos(files: list[Path], tmp: Path) -> None:
    p12 = _secret_file(tmp, "cert.p12", "MACOS_CERTIFICATE_P12")
    key = _secret_file(tmp, f"AuthKey_{os.environ['APPLE_API_KEY_ID']}.p8", "APPLE_API_KEY_P8")
    password = tmp / "p12-password"
    password.write_text(os.environ["MACOS_CERTIFICATE_PASSWORD"])
    bundle = tmp / "binaries.zip"
    if sys.platform == "darwin":
        identity = os.environ.get("MACOS_SIGN_IDENTITY") or "Developer ID Application"
        keychain = tmp / "signing.keychain-db"
        _run("security", "create-keychain", "-p", "ci", keychain)
        _run("security", "unlock-keychain", "-p", "ci", keychain)
        _run("security", "import", p12, "-k", keychain, "-P", password.read_text(),
             "-T", "/usr/bin/codesign")  # fmt: skip
        _run("security", "list-keychains", "-d", "user", "-s", keychain)
        for f in files:
            _run("codesign", "--force", "--timestamp", "--options", "runtime",
                 "--keychain", keychain, "--sign", identity, f)  # fmt: skip
        _zip(files, bundle)
        _run("xcrun", "notarytool", "submit", bundle, "--wait", "--key", key,
             "--key-id", os.environ["APPLE_API_KEY_ID"],
             "--issuer", os.environ["APPLE_API_ISSUER"])  # fmt: skip
        return
    rcodesign = shutil.which("rcodesign") or "rcodesign"
    for f in files:
        _run(rcodesign, "sign", "--p12-file", p12, "--p12-password-file", password,
             "--code-signature-flags", "runtime", "--for-notarization", f)  # fmt: skip
    _zip(files, bundle)
    (tmp / "private_keys").mkdir()
    key.replace(tmp / "private_keys" / key.name)
    subprocess.run(
        [rcodesign, "notary-submit", "--api-issuer", os.environ["APPLE_API_ISSUER"],
         "--api-key", os.environ["APPLE_API_KEY_ID"], "--wait", str(bundle)],
        check=True, cwd=tmp,  # rcodesign finds private_keys/AuthKey_<ID>.p8 here
    )  # fmt: skip


def sign_windows(files: list[Path], tmp: Path) -> None:
    pfx = _secret_file(tmp, "cert.pfx", "WINDOWS_CERTIFICATE_PFX")
    password = os.environ["WINDOWS_CERTIFICATE_PASSWORD"]
    stamp = os.environ.get("TIMESTAMP_URL") or TIMESTAMP_URL
    if sys.platform == "win32":
        for f in files:
            _run("signtool", "sign", "/fd", "sha256", "/tr", stamp, "/td", "sha256",
                 "/f", pfx, "/p", password, f)  # fmt: skip
        return
    secret = tmp / "pfx-password"  # read from a file: not on a command line
    secret.write_text(password)
    for f in files:
        signed = f.with_name(f.name + ".signed")
        _run("osslsigncode", "sign", "-pkcs12", pfx, "-readpass", secret, "-h", "sha256",
             "-ts", stamp, "-in", f, "-out", signed)  # fmt: skip
        signed.replace(f)


def _zip(files: list[Path], bundle: Path) -> None:
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, f in enumerate(files):
            zf.write(f, f"{i:05d}-{f.name}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: sign_runtime.py LISTFILE (run by runenv build --sign-command)")
        return 2
    files = [Path(line) for line in Path(argv[0]).read_text().splitlines() if line.strip()]
    platform = os.environ.get("RUNENV_SIGN_PLATFORM", "")
    if platform.startswith("macosx"):
        needed, sign, files = _MACOS, sign_macos, files
    elif platform.startswith("windows"):
        needed, sign = _WINDOWS, sign_windows
        files = [f for f in files if f.suffix.lower() in (".exe", ".dll", ".pyd")]
    else:
        print(f"{platform}: nothing to sign")
        return 0
    missing = [name for name in needed if not os.environ.get(name)]
    if missing:
        print(f"::notice::{platform}: not signed: the repository has no {', '.join(missing)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="runenv-sign-") as tmp:
        sign(files, Path(tmp))
    print(f"{platform}: signed {len(files)} binaries")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
