"""Which hashtags a post counts for: a Python port of the Rust rules, for the Spark peer.

Spark has no hashtag extractor and no NFKC function, so the job runs this module in a Python
UDF. It ports, line by line, `crates/trends-core/src/hashtag.rs` (twitter-text's hashtag
rules as a forward scan, its URL approximation, and `normalize`: one leading sign dropped, NFKC,
per-character Unicode lowercase, NFKC again if lowercasing broke it) and
`crates/trends-core/src/tags.rs` (supplied `hashtags` win over the text; supplied tags trimmed,
one sign dropped, dropped if empty or holding white space or control characters; tags longer
than 140 characters dropped; at most 30 distinct tags and 1,024 occurrences examined per post;
each tag once per post). Read those files' docs for the rules themselves.

Where it differs from the Rust code (none of it occurs in the synthetic benchmark input):
- Unicode version: Python 3.11's `unicodedata` is Unicode 14, the Rust tables are Unicode 18,
  so letters, marks and digits added since (and their NFKC and case mappings) differ.
- White space: Python's `str.strip` also trims U+001C..U+001F from a supplied tag's ends,
  where Rust (`char::is_whitespace`, the White_Space property) does not and then drops the tag
  for holding a control character.
- A host's TLD after `http(s)://` must be letters: `str.isalpha` (categories L*) here,
  `char::is_alphabetic` (the Alphabetic property, which adds Nl and some marks) in Rust.
A regular expression in the JVM (`regexp_extract_all`) could do extraction without Python,
but Java's regex cannot express "not directly after a previous match" or the URL overlap, and
the JVM has no NFKC function reachable from SQL; being exact was worth the UDF's cost.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_TAG_CHARS = 140
DEFAULT_MAX_TAGS_PER_POST = 30
MAX_OCCURRENCES_EXAMINED = 1024

NO, L, D, S = 0, 1, 2, 3

# twitter-text's HASHTAG_SPECIAL_CHARS (besides `_`).
_SPECIAL = frozenset(
    "\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0\u30fb\u3003"
    "\u0f0b\u0f0c\u00b7"
)
# Private-use code points twitter-text lists as letters (kept for parity with the Rust table).
_PRIVATE_LETTERS = frozenset(
    [chr(c) for c in range(0xF870, 0xF880)]
    + ["\uf882"]
    + [chr(c) for c in range(0xF884, 0xF8A0)]
    + ["\uf8b8"]
    + [chr(c) for c in range(0xF8C1, 0xF8D7)]
)

_SIGN = re.compile("[#\uff03]")
_ASCII_WS = " \t\n\x0c\r"


@lru_cache(maxsize=65536)
def _class_of(c: str) -> int:
    if c < "\x80":
        if c.isalpha():
            return L
        if c.isdigit():
            return D
        return S if c == "_" else NO
    if c in _SPECIAL:
        return S
    if c in _PRIVATE_LETTERS:
        return L
    cat = unicodedata.category(c)
    if cat[0] in "LM":
        return L
    return D if cat == "Nd" else NO


def _may_precede_sign(c: str) -> bool:
    return c in "\ufe0e\ufe0f" or (c != "&" and _class_of(c) == NO)


def _ascii_alnum(c: str) -> bool:
    return c < "\x80" and c.isalnum()


def _scan_body(text: str, start: int) -> tuple[int, bool]:
    end, has_letter, n = start, False, len(text)
    while end < n:
        cls = _class_of(text[end])
        if cls == NO:
            break
        has_letter = has_letter or cls == L
        end += 1
    return end, has_letter


def _starts_with_ignore_case(text: str, p: int, prefix: str) -> bool:
    head = text[p : p + len(prefix)]
    return len(head) == len(prefix) and head.isascii() and head.lower() == prefix


def _is_latin_accent(c: str) -> bool:
    o = ord(c)
    return (
        0xC0 <= o <= 0xD6
        or 0xD8 <= o <= 0xF6
        or 0xF8 <= o <= 0x24F
        or o in (0x253, 0x254, 0x256, 0x257, 0x259, 0x25B, 0x263, 0x268, 0x26F, 0x272, 0x289,
                 0x28B, 0x2BB)
        or 0x300 <= o <= 0x36F
        or 0x1E00 <= o <= 0x1EFF
    )


def _is_plain_host_char(c: str) -> bool:
    return _ascii_alnum(c) or _is_latin_accent(c)


def _scan_host(text: str, p: int, after_scheme: bool) -> tuple[bool, int]:
    """(is a host, end): a host `label(.label)+` at `p`, else the end of the run scanned."""

    def is_label_char(c: str) -> bool:
        if c in "-_":
            return True
        if after_scheme:
            return _ascii_alnum(c) or (c >= "\x80" and _class_of(c) in (L, D))
        return _is_plain_host_char(c)

    n = len(text)
    end, labels, last = p, 0, (p, p)
    while True:
        label_start = end
        while end < n and is_label_char(text[end]):
            end += 1
        if end == label_start:
            break
        labels += 1
        last = (label_start, end)
        if end + 1 < n and text[end] == "." and is_label_char(text[end + 1]):
            end += 1
        else:
            break
    tld = text[last[0] : last[1]]
    if _starts_with_ignore_case(tld, 0, "xn--"):
        tld_ok = len(tld.encode()) > 4
    elif after_scheme:
        tld_ok = len(tld) >= 2 and tld.isalpha()
    else:
        tld_ok = len(tld) >= 2 and tld.isascii() and tld.isalpha()
    return labels >= 2 and tld_ok, end


_QUERY_CHARS = frozenset("!?*'();:&=+$/%#[]-_.,~|@")
_PATH_ASCII = frozenset("!*';:=+,.$/%#[]-_~|&@")


def _is_path_char(c: str) -> bool:
    if c < "\x80":
        return c.isalnum() or c in _PATH_ASCII
    return c == "\u2013" or _is_latin_accent(c) or "\u0400" <= c <= "\u04ff"


def _balanced_parens(text: str, open_: int, depth: int) -> int | None:
    end, inner, n = open_ + 1, False, len(text)
    while True:
        if end >= n:
            return None
        c = text[end]
        if _is_path_char(c):
            end += 1
            inner = True
        elif c == "(" and depth == 0:
            end = _balanced_parens(text, end, 1)
            if end is None:
                return None
            inner = True
        elif c == ")" and inner:
            return end + 1
        else:
            return None


def _scan_path(text: str, start: int) -> int:
    end, n = start, len(text)
    while end < n:
        c = text[end]
        if _is_path_char(c):
            end += 1
        elif c == "(":
            after = _balanced_parens(text, end, 0)
            if after is None:
                break
            end = after
        else:
            break
    return end


def _scan_after_host(text: str, host_end: int) -> int:
    end, n = host_end, len(text)
    if end < n and text[end] == ":":
        digits = end + 1
        while digits < n and "0" <= text[digits] <= "9":
            digits += 1
        if digits > end + 1:
            end = digits
    if end < n and text[end] == "/":
        end = _scan_path(text, end)
    if end < n and text[end] == "?":
        end += 1
        while end < n and (_ascii_alnum(text[end]) or text[end] in _QUERY_CHARS):
            end += 1
    return end


def _url_at(text: str, p: int, prev: str | None):
    """('url', end, valid) or ('skip', end), as `url_at` in hashtag.rs."""
    nxt = p + 1
    if prev is not None and (_ascii_alnum(prev) or prev in "@\uff20$#\uff03"):
        return ("skip", nxt)
    scheme = 7 if _starts_with_ignore_case(text, p, "http://") else (
        8 if _starts_with_ignore_case(text, p, "https://") else 0)
    if scheme:
        ok, end = _scan_host(text, p + scheme, True)
        return ("url", _scan_after_host(text, end), True) if ok else ("skip", nxt)
    if prev is not None and _is_plain_host_char(prev):
        return ("skip", nxt)
    ok, end = _scan_host(text, p, False)
    if ok:
        return ("url", _scan_after_host(text, end), prev not in ("-", "_", ".", "/"))
    return ("skip", max(end, nxt))


class _UrlScan:
    __slots__ = ("floor", "last")

    def __init__(self) -> None:
        self.floor = 0
        self.last = (0, 0)

    def covers(self, text: str, sign: int) -> bool:
        if self.last[0] < sign < self.last[1]:
            return True
        if sign < self.floor:
            return False
        start, has_dot = sign, False
        while start > self.floor:
            c = text[start - 1]
            if c in _ASCII_WS:
                break
            has_dot = has_dot or c == "."
            start -= 1
        self.floor = sign
        if not has_dot:
            return False
        p = start
        while p < sign:
            found = _url_at(text, p, text[p - 1] if p > 0 else None)
            if found[0] == "url" and found[1] > sign:
                self.floor = found[1]
                if found[2]:
                    self.last = (p, found[1])
                return found[2]
            p = found[1]
        return False


def extract_hashtags(text: str) -> list[str]:
    """The hashtags of `text`, without the sign, as written, in order (`for_each_hashtag`)."""
    out: list[str] = []
    pos, matched_to, n = 0, 0, len(text)
    urls = _UrlScan()
    while True:
        m = _SIGN.search(text, pos)
        if m is None:
            return out
        i = m.start()
        body_start = i + 1
        pos = body_start
        if i > 0 and (i - 1 < matched_to or not _may_precede_sign(text[i - 1])):
            continue
        if body_start < n and text[body_start] in "\ufe0f\u20e3":
            continue
        body_end, has_letter = _scan_body(text, body_start)
        pos = body_end
        if not has_letter:
            continue
        matched_to = body_end
        if body_end < n and (text[body_end] in "#\uff03" or text.startswith("://", body_end)):
            continue
        if text[i] == "#" and urls.covers(text, i):
            continue
        urls.floor = max(urls.floor, body_end)
        out.append(text[body_start:body_end])


def normalize(tag: str) -> str:
    """The counting form: one leading sign dropped, NFKC, lowercase, NFKC again if needed."""
    if tag[:1] in ("#", "\uff03"):
        tag = tag[1:]
    if tag.isascii():
        return tag.lower()
    # `str.lower` maps a word-final capital sigma to `ς`; Rust's per-character
    # `char::to_lowercase` always gives `σ`.
    s = unicodedata.normalize("NFKC", tag).replace("\u03a3", "\u03c3").lower()
    if not unicodedata.is_normalized("NFKC", s):
        s = unicodedata.normalize("NFKC", s)
    return s


def _supplied_tag(raw: str) -> str | None:
    tag = raw.strip()
    if tag[:1] in ("#", "\uff03"):
        tag = tag[1:]
    if not tag or any(c.isspace() or unicodedata.category(c) == "Cc" for c in tag):
        return None
    return tag


def post_tags(text: str | None, supplied: list | None,
              max_tags: int = DEFAULT_MAX_TAGS_PER_POST) -> list[str]:
    """The normalized tags a post counts for, each once, in order of first appearance."""
    max_tags = max(max_tags, 1)
    if supplied is not None:
        spellings = (t for t in (_supplied_tag(r) for r in supplied if r is not None) if t)
    else:
        spellings = iter(extract_hashtags(text or ""))
    out: list[str] = []
    seen: set[str] = set()
    examined = 0
    for spelling in spellings:
        if len(out) >= max_tags or examined >= MAX_OCCURRENCES_EXAMINED:
            break
        examined += 1
        if len(spelling) > MAX_TAG_CHARS:
            continue
        tag = normalize(spelling)
        if not tag or len(tag) > MAX_TAG_CHARS or tag in seen:
            continue
        seen.add(tag)
        out.append(tag)
    return out
