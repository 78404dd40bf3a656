#!/usr/bin/env python3
"""Check the DSNs a test sink received (smtp_testd's N.eml + N.env).

  dsn_check.py DIR
      prints one JSON line per message in DIR: {"file", "mail_from",
      "rcpt", "report": bool (multipart/report; report-type=
      delivery-status with a message/delivery-status part and the
      original's header), "reporting_mta", "recipients": [{"final",
      "action", "status", "diagnostic", "remote_mta"}], "subject" (of the
      original header part)}.
"""
import email, email.policy, glob, json, os, sys


def fields(text):
    """RFC 3464 field groups: a list of dicts (lower-case names)."""
    groups, cur = [], {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if cur:
                groups.append(cur)
                cur = {}
            continue
        if line[0] in " \t" and cur:
            k = list(cur)[-1]
            cur[k] += " " + line.strip()
            continue
        k, _, v = line.partition(":")
        cur[k.strip().lower()] = v.strip()
    if cur:
        groups.append(cur)
    return groups


def check(path):
    n = os.path.basename(path)[:-4]
    env = {"rcpt": []}
    for line in open(os.path.join(os.path.dirname(path), n + ".env")):
        k, _, v = line.rstrip("\n").partition("=")
        if k == "rcpt":
            env["rcpt"].append(v)
        else:
            env[k] = v
    raw = open(path, "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out = {"file": os.path.basename(path), "mail_from": env.get("mail_from"),
           "rcpt": env["rcpt"], "report": False, "recipients": []}
    ctype = msg.get_content_type()
    if ctype == "multipart/report" and \
            msg.get_param("report-type") == "delivery-status":
        parts = msg.get_payload()
        ds = [p for p in parts if p.get_content_type() ==
              "message/delivery-status"]
        hdr = [p for p in parts if p.get_content_type() in
               ("text/rfc822-headers", "message/rfc822")]
        if ds and hdr and parts[0].get_content_type() == "text/plain":
            payload = ds[0].get_payload()
            if isinstance(payload, list):      # parsed as messages
                text = "\n\n".join(p.as_string() for p in payload)
            else:
                text = payload
            groups = fields(text)
            out["report"] = True
            out["reporting_mta"] = groups[0].get("reporting-mta", "")
            for g in groups[1:]:
                out["recipients"].append({
                    "final": g.get("final-recipient", ""),
                    "action": g.get("action", ""),
                    "status": g.get("status", ""),
                    "diagnostic": g.get("diagnostic-code", ""),
                    "remote_mta": g.get("remote-mta", "")})
            h = hdr[0].get_payload()
            if isinstance(h, list):
                h = h[0].as_string()
            orig = email.message_from_string(h)
            out["subject"] = orig.get("Subject", "")
    return out


for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.eml")),
                key=lambda x: int(os.path.basename(x)[:-4])):
    print(json.dumps(check(p)))
