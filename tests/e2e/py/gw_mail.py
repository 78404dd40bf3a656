#!/usr/bin/env python3
"""Test messages for the filtering gateway's end-to-end tests.
Usage: gw_mail.py KIND OUTFILE FROM TO MARKER
       gw_mail.py - < SPECS     (one "KIND OUTFILE FROM TO MARKER" a line)
KIND: clean, eicar, eicar-zip, eicar-nested-zip, eicar-rfc822, gtube,
spam-quarantine (rspamd's "add header" GTUBE variant), big (1 MB text),
score-N (a clean message with "X-Archived-Test-Score: N": the test rule
of gw_rspamd_test_conf adds N to rspamd's score), sized-N and
sized-virus-N (exactly N bytes: a text part, then a base64 attachment of
random bytes; -virus ends with a part holding GW_VIRUS_MARKER, clamd's
test signature, so that only a scan of the whole message finds it).
MARKER is a unique word put into the subject and the body: the tests grep
the data directory for it (never on disk in plaintext).  The EICAR test
file is built from its hex form, so that no antivirus flags this script.
Lines end in CRLF, as on the wire."""
import base64, io, sys, zipfile
from email.utils import formatdate

EICAR = bytes.fromhex(
    "58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d"
    "5354414e444152442d414e544956495255532d544553542d46494c452124482b482a")
GTUBE = ("XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL"
         "*C.34X")
# rspamd's test pattern for "add header" (enable_test_patterns)
GTUBE_ADD_HEADER = ("YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-"
                    "TEST-EMAIL*C.34X")

def headers(subject, extra=""):
    dom = frm.split("@")[-1]
    return (f"From: Sender <{frm}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Date: {formatdate()}\r\nMessage-ID: <{marker}.{kind}@{dom}>\r\n"
            f"MIME-Version: 1.0\r\n{extra}")


def zipped(name, data):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    return b.getvalue()


def b64(data):
    s = base64.b64encode(data).decode()
    return "\r\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def with_attachment(subject, name, ctype, data):
    return (headers(subject, 'Content-Type: multipart/mixed; '
                    'boundary="b1"\r\n') +
            "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
            f"See the attachment {marker}.\r\n"
            f"--b1\r\nContent-Type: {ctype}; name=\"{name}\"\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            f"{b64(data)}\r\n--b1--\r\n")


def sized(out, size, virus):
    """Exactly size bytes, written as they are made (never held whole)."""
    import os
    att = ('--b1\r\nContent-Type: application/octet-stream; name="data.bin"'
           '\r\nContent-Disposition: attachment; filename="data.bin"\r\n'
           'Content-Transfer-Encoding: base64\r\n\r\n').encode()
    tail = "--b1--\r\n"
    if virus:
        tail = ("--b1\r\nContent-Type: text/plain\r\n\r\n"
                f"{os.environ['GW_VIRUS_MARKER']}\r\n" + tail)
    tail = tail.encode()

    def head(pad):
        return (headers(f"Large {marker}", f"X-Pad: {'p' * pad}\r\n"
                        'Content-Type: multipart/mixed; boundary="b1"\r\n') +
                "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
                f"Large data attached {marker}.\r\n").encode() + att
    block = base64.encodebytes(os.urandom(57 * 1024)).replace(b"\n", b"\r\n")
    line = len(block) // 1024           # 78: 76 characters and CRLF
    room = size - len(head(1)) - len(tail)
    if room < 0:
        sys.exit(f"sized-{size}: too small")
    nlines, pad = room // line, 1 + room % line
    with open(out, "wb") as f:
        f.write(head(pad))
        for _ in range(nlines // 1024):
            f.write(block)
        f.write(block[:nlines % 1024 * line])
        f.write(tail)
    if os.path.getsize(out) != size:
        sys.exit(f"sized-{size}: made {os.path.getsize(out)} bytes")


def make(*spec):
    global kind, frm, to, marker
    kind, out, frm, to, marker = spec
    if kind == "clean":
        msg = headers(f"Quarterly figures {marker}",
                      "Content-Type: text/plain\r\n") + \
            f"\r\nHello,\r\nthe figures are attached as promised {marker}.\r\n"
    elif kind == "eicar":
        msg = with_attachment(f"Invoice {marker}", "invoice.com",
                              "application/octet-stream", EICAR)
    elif kind == "eicar-zip":
        msg = with_attachment(f"Invoice {marker}", "invoice.zip",
                              "application/zip", zipped("invoice.com", EICAR))
    elif kind == "eicar-nested-zip":
        inner = zipped("invoice.com", EICAR)
        msg = with_attachment(f"Invoice {marker}", "archive.zip",
                              "application/zip", zipped("inner.zip", inner))
    elif kind == "eicar-rfc822":
        fwd = (f"From: <origin@{frm.split('@')[-1]}>\r\nTo: <{frm}>\r\n"
               f"Subject: original {marker}\r\nMIME-Version: 1.0\r\n"
               'Content-Type: multipart/mixed; boundary="in1"\r\n\r\n'
               "--in1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
               "--in1\r\nContent-Type: application/octet-stream; "
               'name="x.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
               f"{b64(EICAR)}\r\n--in1--\r\n")
        msg = (headers(f"Fwd: original {marker}", 'Content-Type: multipart/'
                       'mixed; boundary="b1"\r\n') +
               "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
               f"Forwarded {marker}.\r\n--b1\r\nContent-Type: message/rfc822\r\n"
               "Content-Disposition: attachment\r\n\r\n" + fwd + "\r\n--b1--\r\n")
    elif kind == "gtube":
        msg = headers(f"Cheap offer {marker}", "Content-Type: text/plain\r\n") + \
            f"\r\n{GTUBE}\r\n{marker}\r\n"
    elif kind == "spam-quarantine":
        msg = headers(f"Cheap offer {marker}", "Content-Type: text/plain\r\n") + \
            f"\r\n{GTUBE_ADD_HEADER}\r\n{marker}\r\n"
    elif kind == "big":
        line = f"{marker} " + "x" * 70 + "\r\n"
        msg = headers(f"Big {marker}", "Content-Type: text/plain\r\n") + \
            "\r\n" + line * 13000
    elif kind.startswith("score-"):
        msg = headers(f"Newsletter {marker}", "X-Archived-Test-Score: "
                      f"{kind[6:]}\r\nContent-Type: text/plain\r\n") + \
            f"\r\nHello,\r\nthis month's news {marker}.\r\n"
    elif kind.startswith("sized-"):
        virus = kind.startswith("sized-virus-")
        return sized(out, int(kind.split("-")[-1]), virus)
    else:
        sys.exit(f"unknown kind {kind}")
    with open(out, "wb") as f:
        f.write(msg.encode())


if sys.argv[1:] == ["-"]:
    for line in sys.stdin:
        if line.strip():
            make(*line.split())
else:
    make(*sys.argv[1:6])
