"""Checks hashtags.py (the Spark job's extraction rules) against twitter-text's conformance
cases, the same file `crates/trends-core/tests/conformance.rs` reads, and against
normalization and limit cases from the Rust docs. Prints "N passed, N failed"; exit 1 on any
failure.

    python3 bench/spark/check_hashtags.py [path/to/twitter-text-hashtags.yml]

Default file: $TRENDS_CONFORMANCE_DIR/twitter-text-hashtags.yml, else
<repo root>/../shared/conformance/twitter-text-hashtags.yml, as the Rust test looks for it.
The YAML is read with json.loads per value (its `text:` and `expected:` values are JSON-style
double-quoted strings and flow lists), so no YAML library is needed.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hashtags import extract_hashtags, normalize, post_tags


def load_cases(path):
    cases, case = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            for key in ("description", "text", "expected"):
                prefix = f"- {key}: " if s.startswith("- ") else f"{key}: "
                if s.startswith(prefix):
                    case[key] = json.loads(s[len(prefix):])
            if "expected" in case:
                cases.append(case)
                case = {}
    return cases


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    default_dir = os.environ.get("TRENDS_CONFORMANCE_DIR",
                                 os.path.join(root, "..", "shared", "conformance"))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(default_dir,
                                                               "twitter-text-hashtags.yml")
    checks = []
    for case in load_cases(path):
        checks.append((case["description"], extract_hashtags(case["text"]), case["expected"]))
    # The module docs of hashtag.rs and tags.rs.
    for text, expected in [
        ("Loving #RustLang and ＃Ｋａｆｋａ, not &#39;", ["RustLang", "Ｋａｆｋａ"]),
        ("#16 #_ #1st #web3 #〃", ["1st", "web3"]),
        ("#rust! #fire🔥", ["rust", "fire"]),
        ("(#a 。#b 🔥#c a#d 東京#e", ["a", "b", "c"]),
        ("#a##b", ["b"]),
        ("#foo#bar #http://x.org", []),
        ("https://example.com/#intro www.example.org/docs/#setup example.com/?tab=#d", []),
        ("https://en.wikipedia.org/wiki/Rust_(language)#History", []),
        ("notes.txt/#a ftp://host/#b", ["b"]),
        ("#️⃣ #⃣x", []),
    ]:
        checks.append((f"extract {text!r}", extract_hashtags(text), expected))
    for tag, expected in [
        ("#Rust", "rust"), ("RUST", "rust"), ("＃Ｒｕｓｔ", "rust"),
        ("ｶﾀｶﾅ", "カタカナ"), ("ﬁnance", "finance"), ("x²", "x2"), ("e\u0301", "é"),
        ("İstanbul", "i\u0307stanbul"), ("ı", "ı"), ("Straße", "straße"), ("ẞ", "ß"),
        ("ΟΔΟΣ", "οδοσ"), ("οδός", "οδός"), ("J\u030c", "ǰ"),
    ]:
        checks.append((f"normalize {tag!r}", normalize(tag), expected))
    for (text, supplied), expected in [
        (("#Rust #RUST #kafka", None), ["rust", "kafka"]),
        (("#ignored", [" #Rust ", "rust", "", "a b", "＃Kafka", "x\x07"]), ["rust", "kafka"]),
        (("#ignored", []), []),
        ((" ".join(f"#t{i}" for i in range(40)), None), [f"t{i}" for i in range(30)]),
        (("#" + "a" * 140 + " #" + "b" * 141, None), ["a" * 140]),
    ]:
        checks.append((f"post_tags {text[:30]!r}, {supplied!r}", post_tags(text, supplied),
                       expected))
    failed = [(d, got, exp) for d, got, exp in checks if got != exp]
    for d, got, exp in failed:
        print(f"FAIL {d}: got {got!r}, expected {exp!r}")
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
