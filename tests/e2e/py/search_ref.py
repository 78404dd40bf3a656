#!/usr/bin/env python3
"""An independent reference for archivectl search: the same corpus read
with Python's email module, the documented semantics applied to it, and
the counts compared with `archivectl search --json` for word, rare word,
phrase, prefix, field, date-range and boolean queries, and the first page
(the newest matches, by date).

Reference semantics (docs/query-language.md, tenant without stemming):
  - a word is a run of letters and digits, compared lower-cased; words
    longer than 128 characters are not indexed;
  - fields: from, to, cc, bcc (the header's addresses as "Name <addr>"),
    subject, body (text/* parts, HTML with tags, scripts and styles
    removed and entities decoded, nested messages' From/To/Cc, subject
    and text), filename (attachment names);
  - a phrase is consecutive words within one field;
  - prefix* is any word starting with the prefix;
  - from:@domain is an address of From in that domain;
  - after:/before: compare the Date header in UTC.
Queries are chosen so that the engine's finer points (stemming, CJK,
accents, punctuation inside words) do not arise.

Usage: search_ref.py ARCHIVECTL DATADIR TENANT CORPUSDIR
Prints one line per query and exits 1 when a count differs."""
import email, email.policy, email.utils, html, json, os, re, subprocess, sys
from datetime import datetime, timezone

WORD = re.compile(r"[^\W_]+")


def words(text):
    return [w for w in WORD.findall(text.lower()) if len(w) <= 128]


def decode_part(part):
    raw = part.get_payload(decode=True) or b""
    cs = part.get_content_charset()
    if cs:
        try:
            return raw.decode(cs, errors="replace")
        except LookupError:
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


BLOCKS = ("p div br li tr td th h1 h2 h3 h4 h5 h6 table ul ol dt dd title "
          "blockquote pre hr section article header footer").split()


def html_text(s):
    """As documented: comments, scripts and styles dropped, block
    elements become line breaks, other tags are dropped without a
    break (so "ener<!---->gy" is one word), entities decoded."""
    s = re.sub(r"(?s)<!--.*?-->", "", s)
    s = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", s)
    s = re.sub(r"(?s)<\s*/?\s*(\w+)[^>]*>",
               lambda m: "\n" if m.group(1).lower() in BLOCKS else "", s)
    s = re.sub(r"(?s)<[^>]*>", "", s)
    return html.unescape(s)


def addresses(msg, name):
    vals = msg.get_all(name) or []
    out = []
    for n, a in email.utils.getaddresses([str(v) for v in vals]):
        if a or n:
            out.append((n, a))
    return out


def addr_text(lst):
    return "\n".join((f"{n} <{a}>" if n else a) for n, a in lst)


def walk(part, body, files, depth=0):
    if depth > 32:
        return
    ct = part.get_content_type()
    if ct == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if isinstance(inner, email.message.Message):
            for h in ("From", "To", "Cc"):
                for n, a in addresses(inner, h):
                    body.append(f"{n} <{a}>" if n else a)
            if inner.get("Subject"):
                body.append(str(inner.get("Subject")))
            walk(inner, body, files, depth + 1)
        return
    if part.is_multipart():
        for p in part.get_payload():
            walk(p, body, files, depth + 1)
        return
    fn = part.get_filename()
    if fn:
        files.append(str(fn))
    if part.get_content_maintype() != "text":
        return
    t = decode_part(part)
    body.append(html_text(t) if ct == "text/html" else t)


def load(corpus):
    docs = []
    for name in sorted(os.listdir(corpus)):
        if not name.endswith(".eml"):
            continue
        raw = open(os.path.join(corpus, name), "rb").read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body, files = [], []
        try:
            walk(msg, body, files)
        except Exception:
            pass
        frm = addresses(msg, "From")
        f = {
            "from": words(addr_text(frm)),
            "to": words(addr_text(addresses(msg, "To"))),
            "cc": words(addr_text(addresses(msg, "Cc"))),
            "bcc": words(addr_text(addresses(msg, "Bcc"))),
            "subject": words(str(msg.get("Subject", "") or "")),
            "body": words("\n".join(body)),
            "filename": words("\n".join(files)),
        }
        date = None
        try:
            d = email.utils.parsedate_to_datetime(str(msg.get("Date")))
            if d.tzinfo is None:
                d = d.replace(tzinfo=timezone.utc)
            date = d.timestamp()
        except Exception:
            pass
        docs.append({"f": f, "all": set().union(*map(set, f.values())),
                     "from_domains": {a.lower().rsplit("@", 1)[-1]
                                      for _, a in frm if "@" in a},
                     "date": date})
    return docs


def word(w):
    return lambda d: w in d["all"]


def field_word(field, w):
    return lambda d: w in d["f"][field]


def prefix(p):
    return lambda d: any(t.startswith(p) for t in d["all"])


def phrase(text):
    ws = words(text)
    def has(seq):
        n = len(ws)
        return any(seq[i:i + n] == ws for i in range(len(seq) - n + 1))
    return lambda d: any(has(v) for v in d["f"].values())


def from_domain(dom):
    return lambda d: dom in d["from_domains"]


def date_range(a, b):
    ta = datetime.fromisoformat(a).replace(tzinfo=timezone.utc).timestamp()
    tb = datetime.fromisoformat(b).replace(tzinfo=timezone.utc).timestamp()
    return lambda d: d["date"] is not None and ta <= d["date"] < tb


def AND(*ps):
    return lambda d: all(p(d) for p in ps)


def OR(*ps):
    return lambda d: any(p(d) for p in ps)


def NOT(p):
    return lambda d: not p(d)


PAGE = 20


def main():
    ctl, data, tenant, corpus = sys.argv[1:5]
    docs = load(corpus)
    df = {}
    for d in docs:
        for w in d["all"]:
            df[w] = df.get(w, 0) + 1
    rare = [w for w in sorted(df) if df[w] == 1 and len(w) >= 11 and
            w.isascii() and w.isalpha()][:3]
    queries = [
        ("energy", word("energy")),
        ("kernel", word("kernel")),
        ("meeting", word("meeting")),
        ("pipeline", word("pipeline")),
        ('"please let me know"', phrase("please let me know")),
        ('"conference call"', phrase("conference call")),
        ("contra*", prefix("contra")),
        ("pipel*", prefix("pipel")),
        ("from:@enron.com", from_domain("enron.com")),
        ("subject:meeting", field_word("subject", "meeting")),
        ("subject:patch", field_word("subject", "patch")),
        ("after:2001-01-01 before:2001-07-01",
         date_range("2001-01-01", "2001-07-01")),
        ("after:2023-01-01 before:2024-01-01",
         date_range("2023-01-01", "2024-01-01")),
        ("meeting after:2001-01-01",
         AND(word("meeting"), date_range("2001-01-01", "9999-01-01"))),
        ("energy -gas", AND(word("energy"), NOT(word("gas")))),
        ("kernel OR pipeline", OR(word("kernel"), word("pipeline"))),
        ("(meeting OR call) enron",
         AND(OR(word("meeting"), word("call")), word("enron"))),
        ("from:@enron.com -subject:meeting after:2001-01-01",
         AND(from_domain("enron.com"), NOT(field_word("subject", "meeting")),
             date_range("2001-01-01", "9999-01-01"))),
    ] + [(w, word(w)) for w in rare]
    bad = 0
    for q, pred in queries:
        match = [d for d in docs if pred(d)]
        want = len(match)
        r = subprocess.run([ctl, "-d", data, "--json", "search", "--tenant",
                            tenant, "--limit", str(PAGE), q],
                           capture_output=True, text=True)
        j = json.loads(r.stdout) if r.returncode == 0 else {}
        got = j.get("total")
        ok = got == want
        # the first page is the newest PAGE matches: compared by date
        # (the same dates, newest first) where every match has a Date.
        # A Date at or before 1970 is replaced by the arrival time (the
        # newest of all here): those k rows come first, whatever their order
        page = "-"
        if all(d["date"] is not None for d in match):
            k = min(PAGE, sum(1 for d in match if d["date"] <= 0))
            top = sorted((int(d["date"]) for d in match if d["date"] > 0),
                         reverse=True)
            want_p = [datetime.fromtimestamp(t, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ") for t in top[:PAGE - k]]
            got_p = [x["date"] for x in j.get("results", [])][k:]
            page = "same"
            if got_p != want_p:
                k = next((i for i, (a, b) in enumerate(zip(got_p, want_p))
                          if a != b), min(len(got_p), len(want_p)))
                page = (f"DIFFERS at row {k + 1}: archivectl "
                        f"{got_p[k:k + 2]}, reference {want_p[k:k + 2]}")
            ok = ok and got_p == want_p
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {q!r}: archivectl {got}, "
              f"reference {want}, first page {page}")
    nonzero = sum(1 for q, p in queries if any(p(d) for d in docs))
    print(f"{len(queries)} queries, {nonzero} with matches, {bad} differ")
    sys.exit(1 if bad or nonzero < len(queries) - 2 else 0)


main()
