#!/usr/bin/env python3
"""The naive peer of issue 11: the simplest backup a user could write with Python's standard library.

    python3 bench/peer.py <data-dir> <out.zip>

Every *.db file at the top of the data dir: the online backup API in one step (`src.backup(mem)`)
into `:memory:`, `mem.serialize()`, and the image written into a zip with ZIP_STORED; then VERSION
and every file under assets/, stored too. No check, no hash, no fsync: what dbzip is compared with.
A .db that SQLite cannot read (the bench's CSV named legacy.db) is left out, as a user's try/except
would. Prints one JSON line: the databases written and the process's peak RSS and CPU time.
"""
import json
import os
import resource
import sqlite3
import sys
import zipfile


def main() -> None:
    data_dir, out = sys.argv[1], sys.argv[2]
    databases = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        version = os.path.join(data_dir, "VERSION")
        if os.path.isfile(version):
            zf.write(version, "VERSION")
        for name in sorted(os.listdir(data_dir)):
            path = os.path.join(data_dir, name)
            if not name.endswith(".db") or not os.path.isfile(path):
                continue
            src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            mem = sqlite3.connect(":memory:")
            try:
                src.backup(mem)
                image = mem.serialize()
            except sqlite3.DatabaseError:
                continue
            finally:
                src.close()
                mem.close()
            zf.writestr(name, image)
            databases.append({"path": name, "bytes": len(image)})
            del image
        assets = os.path.join(data_dir, "assets")
        for root, dirs, files in os.walk(assets):
            dirs.sort()
            for file in sorted(files):
                full = os.path.join(root, file)
                zf.write(full, os.path.relpath(full, data_dir))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "databases": databases,
        "peakRssBytes": usage.ru_maxrss * 1024,
        "cpuUserMs": round(usage.ru_utime * 1000),
        "cpuSystemMs": round(usage.ru_stime * 1000),
        "sqlite": sqlite3.sqlite_version,
    }))


if __name__ == "__main__":
    main()
