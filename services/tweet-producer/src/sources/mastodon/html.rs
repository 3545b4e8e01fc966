//! Mastodon's HTML `content` to plain text.
//!
//! Why hand-written and not an HTML crate: Mastodon sanitizes every status it serves (its own
//! and federated ones) down to a handful of tags (`p`, `br`, `a`, `span`, and a few inline and
//! list tags since 4.x) with entity-escaped text, so what is needed is a tag stripper with line
//! breaks and entity decoding, not an HTML5 tree builder (`html2text` brings html5ever and its
//! tables, about ten times this producer's own code, for text that is never more than that).
//! It never panics, whatever the input: an unterminated tag is kept as text, an unknown or
//! broken entity is kept as written.
//!
//! Rules: `<br>` is a newline; a paragraph (`<p>`, `</p>`), `<blockquote>`, `<pre>`, `<div>`,
//! `<hN>` is a blank line between blocks; `<li>`, `<ul>`, `<ol>` a newline; other tags are
//! removed and their text kept (so a mention `@<span>user</span>` is `@user`, a hashtag
//! `#<span>tag</span>` is `#tag`, and the "invisible" parts of a shortened link give back the
//! whole URL); comments are dropped; runs of whitespace in text are one space (except in
//! `<pre>`); entities (`&amp;`, `&#39;`, `&#x1F600;`, the common named ones) are decoded. The
//! result is trimmed.

/// Named entities decoded; Mastodon's serializer only ever writes the first six.
const ENTITIES: &[(&str, char)] = &[
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("hellip", '…'),
    ("mdash", '—'),
    ("ndash", '–'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("laquo", '«'),
    ("raquo", '»'),
    ("middot", '·'),
    ("bull", '•'),
    ("copy", '©'),
    ("reg", '®'),
    ("trade", '™'),
    ("euro", '€'),
];

/// The longest entity looked for, `&` and `;` included (`&#x0010FFFF;` is 12).
const MAX_ENTITY: usize = 16;

/// Plain text of an HTML fragment.
pub fn to_text(html: &str) -> String {
    let mut text = Text::default();
    let mut rest = html;
    while let Some(i) = rest.find(['<', '&']) {
        text.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('&') {
            let (decoded, used) = entity(rest);
            text.push_char(decoded);
            rest = &rest[used..];
        } else {
            match tag(rest) {
                Some((tag, used)) => {
                    text.tag(&tag);
                    rest = &rest[used..];
                }
                None => {
                    text.push_char('<');
                    rest = &rest[1..];
                }
            }
        }
    }
    text.push_str(rest);
    text.finish()
}

/// A tag: its lowercase name and whether it closes.
#[derive(Debug, PartialEq, Eq)]
struct Tag {
    name: String,
    closing: bool,
}

/// Reads the markup at the start of `s` (which starts with `<`): the tag and the bytes used, or
/// `None` when it is not markup (then `<` is text). Comments and declarations give an empty
/// name.
fn tag(s: &str) -> Option<(Tag, usize)> {
    let after = &s[1..];
    if let Some(comment) = after.strip_prefix("!--") {
        let end = comment.find("-->")?;
        return Some((empty_tag(), 1 + 3 + end + 3));
    }
    let first = after.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '/' || first == '!' || first == '?') {
        return None;
    }
    // The end: the first `>` outside a quoted attribute value.
    let mut quote: Option<char> = None;
    let mut end = None;
    for (i, c) in after.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => {
                end = Some(i);
                break;
            }
            (None, _) => {}
        }
    }
    let end = end?;
    let inner = &after[..end];
    let (closing, inner) = match inner.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, inner),
    };
    let name: String = inner
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Some((Tag { name, closing }, 1 + end + 1))
}

fn empty_tag() -> Tag {
    Tag {
        name: String::new(),
        closing: false,
    }
}

/// Decodes the entity at the start of `s` (which starts with `&`): the character and the bytes
/// used; `('&', 1)` when it is not a valid entity.
fn entity(s: &str) -> (char, usize) {
    let not_one = ('&', 1);
    // `;` is ASCII, so its index is a character boundary.
    let window = &s.as_bytes()[..s.len().min(MAX_ENTITY)];
    let Some(semi) = window.iter().position(|&b| b == b';') else {
        return not_one;
    };
    let body = &s[1..semi];
    let decoded = if let Some(number) = body.strip_prefix('#') {
        let (digits, radix) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16),
            None => (number, 10),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return not_one;
        }
        // Digits of no character (0, surrogates, past the last plane, too many digits) are
        // U+FFFD, as in HTML.
        u32::from_str_radix(digits, radix)
            .ok()
            .filter(|&v| v != 0)
            .and_then(char::from_u32)
            .unwrap_or('\u{fffd}')
    } else {
        match ENTITIES.iter().find(|(name, _)| *name == body) {
            Some((_, c)) => *c,
            None => return not_one,
        }
    };
    (decoded, semi + 1)
}

/// The text being built, with pending line breaks and whitespace collapsing.
#[derive(Debug, Default)]
struct Text {
    out: String,
    /// Newlines owed before the next text (1: a line break, 2: a blank line).
    breaks: usize,
    /// A space owed before the next text.
    space: bool,
    /// Inside `<pre>` (nesting depth): whitespace is kept.
    pre: usize,
}

impl Text {
    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            self.push_char(c);
        }
    }

    fn push_char(&mut self, c: char) {
        if self.pre == 0 && matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}') {
            self.space = true;
            return;
        }
        if !self.out.is_empty() {
            if self.breaks > 0 {
                for _ in 0..self.breaks {
                    self.out.push('\n');
                }
            } else if self.space {
                self.out.push(' ');
            }
        }
        self.breaks = 0;
        self.space = false;
        self.out.push(c);
    }

    fn line_break(&mut self, newlines: usize) {
        self.breaks = self.breaks.max(newlines);
        self.space = false;
    }

    fn tag(&mut self, tag: &Tag) {
        match tag.name.as_str() {
            "br" => {
                // Consecutive <br> are consecutive newlines, at most a blank line.
                self.breaks = (self.breaks + 1).min(2);
                self.space = false;
            }
            "p" | "blockquote" | "div" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.line_break(2);
            }
            "pre" => {
                self.line_break(2);
                self.pre = if tag.closing {
                    self.pre.saturating_sub(1)
                } else {
                    self.pre + 1
                };
            }
            "li" | "ul" | "ol" => self.line_break(1),
            _ => {}
        }
    }

    fn finish(self) -> String {
        self.out.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_breaks_mentions_hashtags_and_links() {
        // The status edit of Mastodon's streaming documentation (ruby.social).
        let html = r#"<p><a href="https://ruby.social/tags/musicTuesday" class="mention hashtag" rel="nofollow noopener noreferrer" target="_blank">#<span>musicTuesday</span></a> </p><p>Here's a solo <a href="https://ruby.social/tags/piano" class="mention hashtag" rel="nofollow noopener noreferrer" target="_blank">#<span>piano</span></a> track of mine called Gravity Assist</p><p><a href="https://ruby.social/tags/neoclassical" class="mention hashtag" rel="nofollow noopener noreferrer" target="_blank">#<span>neoclassical</span></a> (<a href="https://ruby.social/tags/jazz" class="mention hashtag" rel="nofollow noopener noreferrer" target="_blank">#<span>jazz</span></a> ish)</p><p><a href="https://cstudios.bandcamp.com/track/celestia-gravity-assist-no-19-var-2" rel="nofollow noopener noreferrer" target="_blank"><span class="invisible">https://</span><span class="ellipsis">cstudios.bandcamp.com/track/ce</span><span class="invisible">lestia-gravity-assist-no-19-var-2</span></a></p>"#;
        assert_eq!(
            to_text(html),
            "#musicTuesday\n\nHere's a solo #piano track of mine called Gravity Assist\n\n#neoclassical (#jazz ish)\n\nhttps://cstudios.bandcamp.com/track/celestia-gravity-assist-no-19-var-2"
        );
        let mention = r#"<span class="h-card"><a class="u-url mention" href="https://pl.nulled.red/users/disarray" rel="nofollow noopener noreferrer" target="_blank">@<span>disarray</span></a></span> glad i was able to help"#;
        assert_eq!(to_text(mention), "@disarray glad i was able to help");
        assert_eq!(
            to_text("<p>line one<br>line two<br />line three<br/><br><br>after</p><p>next</p>"),
            "line one\nline two\nline three\n\nafter\n\nnext"
        );
        assert_eq!(
            to_text("<ul><li>one</li><li>two</li></ul><p>x</p>"),
            "one\ntwo\n\nx"
        );
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(
            to_text("<p>NetNewsWire doesn&#39;t &amp; won&apos;t &lt;b&gt; &quot;q&quot;</p>"),
            "NetNewsWire doesn't & won't <b> \"q\""
        );
        assert_eq!(to_text("&#x1F600;&#128512;a&nbsp;b"), "😀😀a\u{a0}b");
        assert_eq!(
            to_text("caf&eacute; &unknown; & &; &#; &#xZZ; AT&T"),
            "caf&eacute; &unknown; & &; &#; &#xZZ; AT&T"
        );
        assert_eq!(
            to_text("&#0;&#xD800;&#x110000;&#99999999999;"),
            "\u{fffd}\u{fffd}\u{fffd}\u{fffd}"
        );
    }

    #[test]
    fn whitespace_collapses_except_in_pre() {
        assert_eq!(to_text("  <p>a \n\t b</p>\n\n<p> c </p>  "), "a b\n\nc");
        assert_eq!(
            to_text("<p>code:</p><pre><code>fn main() {\n    x\n}</code></pre>"),
            "code:\n\nfn main() {\n    x\n}"
        );
    }

    #[test]
    fn broken_markup_never_panics_and_keeps_text() {
        assert_eq!(to_text("a < b and c<d"), "a < b and c<d");
        assert_eq!(to_text("x <p unterminated"), "x <p unterminated");
        assert_eq!(to_text(r#"<a title="1 > 0">ok</a>"#), "ok");
        assert_eq!(to_text("a<!-- hidden <p> -->b"), "ab");
        assert_eq!(to_text("a<!-- open"), "a<!-- open");
        assert_eq!(to_text(""), "");
        assert_eq!(to_text("<p></p><br>"), "");
        for input in [
            "<",
            "&",
            "&#",
            "<a",
            "<'",
            "</",
            "&#x",
            "é&é<é>é",
            "<\u{e9}>",
        ] {
            let _ = to_text(input);
        }
    }
}
