#!/usr/bin/env python3
"""check_modules.py SOURCE_DIR - the module rules of DESIGN.md "Layout",
checked on every #include "..." of the C sources:

  - a module includes another module only through its one public header
    (MODULE/MODULE.h; common/'s headers are all public);
  - and only a module it may use (USES below): ingest and gateway never
    each other, search never ingest or gateway, mime/smtp/spool sit on
    store, keysvc and common;
  - archived/ and tools/ wire modules together and may use every public
    header (tools also archived/config.h, the instance configuration).

Prints every violation with file and line; exit status 1 if any.
"""
import os
import re
import sys

PUBLIC = {
    "common": None,          # every header of common/ is public
    "keysvc": "keysvc/keysvc.h",
    "store": "store/store.h",
    "mime": "mime/mime.h",
    "smtp": "smtp/smtp.h",
    "spool": "spool/spool.h",
    "ingest": "ingest/ingest.h",
    "gateway": "gateway/gateway.h",
    "search": "search/search.h",
    "jobs": "jobs/jobs.h",
    "web": "web/web.h",
    "archived": "archived/config.h",
}
BASE = {"common", "keysvc", "store"}
USES = {
    "common": set(),
    "keysvc": {"common"},
    "store": {"common", "keysvc"},
    "mime": BASE,
    "smtp": BASE,
    "spool": BASE,
    "ingest": BASE | {"mime", "smtp", "spool"},
    "gateway": BASE | {"mime", "smtp", "spool"},
    "search": BASE | {"mime"},
    "jobs": BASE | {"mime", "search"},
    "web": BASE | {"mime", "search", "jobs"},
    "archived": set(PUBLIC),
    "tools": set(PUBLIC),
}
COMMON_SHORT = {"ar.h", "conf.h", "net.h"}   # included as "ar.h" etc.
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def target_module(inc, here):
    """The module an include names, and the header's path in the tree."""
    if "/" in inc:
        return inc.split("/", 1)[0], inc
    if inc in COMMON_SHORT:
        return "common", "common/" + inc
    return here, here + "/" + inc           # a header of its own folder


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    bad = []
    for mod in USES:
        d = os.path.join(root, mod)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(d, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    m = INC.match(line)
                    if not m:
                        continue
                    tgt, hdr = target_module(m.group(1), mod)
                    if tgt == mod or tgt not in PUBLIC:
                        continue    # its own headers; generated files
                    where = f"{mod}/{name}:{n}"
                    if tgt not in USES[mod]:
                        bad.append(f"{where}: {mod} may not use {tgt} "
                                   f"({m.group(1)})")
                    elif PUBLIC[tgt] and hdr != PUBLIC[tgt]:
                        bad.append(f"{where}: {m.group(1)} is private to "
                                   f"{tgt}/ (its public header is "
                                   f"{PUBLIC[tgt]})")
    for b in bad:
        print(b)
    print(f"module rules: {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
