"""Vendor the web app's browser libraries into pwa/vendor/ from npm, at pinned versions.

The app has no build step: the browser loads ES modules as they are. So the few third-party modules it uses are
copied here from the npm tarballs, with their bare import specifiers ("preact", "preact/hooks") rewritten to the
vendored files' relative paths (an import map would need an inline script, which the app's CSP forbids).

Each tarball's sha512 is checked against the registry's published integrity before anything is copied, and
pwa/vendor/VENDOR.json records, per package, its name, version and integrity, and the sha256 of every file written.
tests/pwa/test_vendor.py checks the files against that record, offline.

    python scripts/vendor_pwa.py          # needs npm and the npm registry
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess  # nosec B404 - runs npm with fixed arguments
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "pwa" / "vendor"
RECORD = VENDOR / "VENDOR.json"

# Bare specifiers and the vendored file each resolves to (relative to the importing file, all in one folder
# except @msgpack/msgpack, which keeps its own relative imports).
SPECIFIERS = {"preact": "./preact.mjs", "preact/hooks": "./preact-hooks.mjs"}


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    # tarball path (under package/) -> path under pwa/vendor/
    files: dict[str, str] = field(default_factory=dict)
    # whole folders copied as they are: tarball folder -> vendor folder (suffix filter below)
    trees: dict[str, str] = field(default_factory=dict)


PACKAGES = (
    Package(
        "preact",
        "11.2.0",
        files={
            "dist/preact.mjs": "preact.mjs",
            "hooks/dist/hooks.mjs": "preact-hooks.mjs",
            "LICENSE": "licenses/preact.txt",
        },
    ),
    Package("htm", "3.1.1", files={"dist/htm.mjs": "htm.mjs", "LICENSE": "licenses/htm.txt"}),
    # The router only: preact-iso's index also pulls its prerenderer (a server-side dependency).
    Package(
        "preact-iso",
        "2.12.2",
        files={"src/router.js": "preact-iso-router.mjs", "LICENSE": "licenses/preact-iso.txt"},
    ),
    Package(
        "@msgpack/msgpack",
        "3.1.3",
        files={"LICENSE": "licenses/msgpack.txt"},
        trees={"dist.esm": "msgpack"},
    ),
)


def npm(*args: str) -> str:
    result = subprocess.run(["npm", *args], check=True, capture_output=True, text=True)  # nosec B603 B607
    return result.stdout


def published_integrity(package: Package) -> str:
    return json.loads(npm("view", f"{package.name}@{package.version}", "dist.integrity", "--json"))


def fetch_tarball(package: Package, workdir: Path) -> bytes:
    out = json.loads(npm("pack", f"{package.name}@{package.version}", "--json", "--pack-destination", str(workdir)))
    return (workdir / out[0]["filename"]).read_bytes()


def sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def rewrite_imports(text: str) -> str:
    for bare, local in SPECIFIERS.items():
        for quote in ("'", '"'):
            text = text.replace(f"from {quote}{bare}{quote}", f"from {quote}{local}{quote}")
            text = text.replace(f"from{quote}{bare}{quote}", f"from{quote}{local}{quote}")
    return text


def members(tgz: bytes) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith("package/"):
                handle = archive.extractfile(member)
                if handle is not None:
                    found[member.name.removeprefix("package/")] = handle.read()
    return found


def vendor_package(package: Package, tgz: bytes) -> dict[str, str]:
    content = members(tgz)
    written: dict[str, str] = {}
    wanted = dict(package.files)
    for folder, target in package.trees.items():
        for name in content:
            if name.startswith(folder + "/") and name.endswith(".mjs"):
                wanted[name] = target + name.removeprefix(folder)
    for source, target in sorted(wanted.items()):
        data = content[source]
        if target.endswith((".mjs", ".js")):
            data = rewrite_imports(data.decode("utf-8")).encode("utf-8")
        path = VENDOR / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[target] = hashlib.sha256(data).hexdigest()
    return written


def main() -> None:
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    VENDOR.mkdir(parents=True)
    record = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            tgz = fetch_tarball(package, Path(tmp))
            integrity = published_integrity(package)
            if sri_sha512(tgz) != integrity:
                raise SystemExit(f"{package.name}@{package.version}: tarball does not match the registry's integrity")
            files = vendor_package(package, tgz)
            record.append({"name": package.name, "version": package.version, "integrity": integrity, "files": files})
            print(f"vendored {package.name}@{package.version} ({len(files)} files)")
    RECORD.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
