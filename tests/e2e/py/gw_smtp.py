#!/usr/bin/env python3
"""SMTP client for the gateway tests (Python's smtplib: a real client).

  gw_smtp.py send PORT FROM RCPT[,RCPT...] FILE
      send FILE's bytes (CRLF lines) as one message; prints the reply to
      each RCPT and the final reply, "rcpt ADDR CODE" / "data CODE";
      exit 0 when the message got 250.  FROM may be "" (null sender).
      Environment: GW_SRC=ADDR connects from that local address
      (127.0.0.2 ...); GW_AUTH=USER:PASSWORD does STARTTLS, then AUTH
      (prints "auth CODE", or "auth not offered"); GW_AUTH_CLEAR=1 tries
      AUTH without STARTTLS; GW_TIMEOUT=SECONDS the longest wait for
      one reply (default 60; a 100 MB message is scanned before its).
  gw_smtp.py tricks PORT
      the classic open-relay tricks, one transaction each; prints
      "CODE trick" a line for the answer that decides (RCPT, or MAIL when
      refused there); exit 0 when none was accepted.
"""
import smtplib, sys


def send(port, sender, rcpts, path):
    import os, ssl
    data = open(path, "rb").read()
    src = os.environ.get("GW_SRC")
    s = smtplib.SMTP("127.0.0.1", int(port), timeout=float(os.environ.get("GW_TIMEOUT", "60")),
                     source_address=(src, 0) if src else None)
    s.ehlo("client.test")
    auth = os.environ.get("GW_AUTH")
    if auth:
        user, _, pw = auth.partition(":")
        if not os.environ.get("GW_AUTH_CLEAR"):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s.starttls(context=ctx)
            s.ehlo("client.test")
        if not s.has_extn("auth"):
            print("auth not offered")
            s.quit()
            return 1
        try:
            code, _ = s.login(user, pw)
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        print(f"auth {code}")
        if code != 235:
            s.quit()
            return 1
    code, _ = s.mail(sender)
    if code != 250:
        print(f"mail {code}")
        return 1
    ok = 0
    for r in rcpts:
        code, _ = s.rcpt(r)
        print(f"rcpt {r} {code}")
        ok += code in (250, 251)
    if not ok:
        s.rset()
        s.quit()
        return 1
    code, msg = s.data(data)
    print(f"data {code} {msg.decode(errors='replace')}")
    s.quit()
    return 0 if code == 250 else 1


TRICKS = [
    # (what, MAIL FROM argument, RCPT TO argument)
    ("domain of no tenant", "<a@outside.test>", "<x@outside.test>"),
    ("percent hack", "<a@outside.test>", "<x%outside.test@acme.example>"),
    ("bang path", "<a@outside.test>", "<outside.test!x@acme.example>"),
    ("quoted at", "<a@outside.test>", '<"x@outside.test"@acme.example>'),
    ("escaped at", "<a@outside.test>", "<x\\@outside.test@acme.example>"),
    ("double at", "<a@outside.test>", "<x@outside.test@acme.example>"),
    ("source route", "<a@outside.test>", "<@acme.example:x@outside.test>"),
    ("source route, two hops", "<a@outside.test>",
     "<@acme.example,@b.acme.example:x@outside.test>"),
    ("address literal", "<a@outside.test>", "<x@[127.0.0.1]>"),
    ("address literal of ours", "<a@outside.test>", "<x@[127.0.0.2]>"),
    ("tenant domain as a suffix", "<a@outside.test>",
     "<x@acme.example.outside.test>"),
    ("tenant domain as a prefix label", "<a@outside.test>",
     "<x@evilacme.example>"),
    ("trailing dot outside", "<a@outside.test>", "<x@outside.test.>"),
    ("no angle brackets", "<a@outside.test>", "x@outside.test"),
    ("local sender, outside recipient", "<bob@acme.example>",
     "<x@outside.test>"),
    ("null sender, outside recipient", "<>", "<x@outside.test>"),
    ("postmaster of the outside", "<a@outside.test>",
     "<postmaster@outside.test>"),
    ("bare postmaster", "<a@outside.test>", "<postmaster>"),
    ("bare user", "<a@outside.test>", "<x>"),
]


def tricks(port):
    bad = 0
    for what, mail, rcpt in TRICKS:
        s = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
        s.ehlo("acme.example")
        code, _ = s.docmd("MAIL", "FROM:" + mail)
        if code == 250:
            code, _ = s.docmd("RCPT", "TO:" + rcpt)
        print(f"{code} {what}: MAIL FROM:{mail} RCPT TO:{rcpt}")
        if 200 <= code < 400:
            bad += 1
        s.docmd("RSET")
        s.quit()
    # AUTH is no way around it: the MX offers none, and an attempt
    # changes nothing
    s = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
    s.ehlo("acme.example")
    code, _ = s.docmd("AUTH", "PLAIN AGFkbWluAGFkbWlucGFzc3dvcmQ=")
    print(f"{code} AUTH PLAIN on the MX")
    if 200 <= code < 300:
        bad += 1
    s.docmd("MAIL", "FROM:<a@outside.test>")
    code, _ = s.docmd("RCPT", "TO:<x@outside.test>")
    print(f"{code} after AUTH: RCPT TO:<x@outside.test>")
    if 200 <= code < 400:
        bad += 1
    s.quit()
    return 1 if bad else 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "send":
        rc = send(sys.argv[2], sys.argv[3],
                  [r for r in sys.argv[4].split(",") if r], sys.argv[5])
    elif cmd == "tricks":
        rc = tricks(sys.argv[2])
    else:
        sys.exit(__doc__)
    sys.exit(rc)
