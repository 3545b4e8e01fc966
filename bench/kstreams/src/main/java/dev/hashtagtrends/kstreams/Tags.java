package dev.hashtagtrends.kstreams;

import com.twitter.twittertext.Extractor;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Which hashtags a post counts for: normalized, each at most once, in order of appearance. */
public final class Tags {
    private Tags() {}

    /** Longest supplied tag accepted, in code points (as the Rust aggregator). */
    static final int MAX_TAG_CHARS = 140;

    /** Stateless apart from a config flag: safe to share between stream threads. */
    private static final Extractor EXTRACTOR = new Extractor();

    /**
     * The post's supplied {@code hashtags} when present (sanitized), else the hashtags
     * twitter-text extracts from {@code text}; normalized and deduplicated.
     */
    public static List<String> of(Post post) {
        List<String> out = new ArrayList<>(4);
        if (post.hashtags != null) {
            for (String raw : post.hashtags) {
                String tag = supplied(raw);
                if (tag != null) {
                    add(out, tag);
                }
            }
        } else {
            for (String tag : EXTRACTOR.extractHashtags(post.text)) {
                add(out, tag);
            }
        }
        return out;
    }

    private static void add(List<String> out, String spelling) {
        String tag = normalize(spelling);
        // Posts carry a handful of tags: a linear scan beats hashing.
        if (!tag.isEmpty() && !out.contains(tag)) {
            out.add(tag);
        }
    }

    /** The counting form: NFKC, then lowercase (root locale), then NFKC again if that broke it. */
    public static String normalize(String tag) {
        String n = Normalizer.normalize(tag, Normalizer.Form.NFKC).toLowerCase(Locale.ROOT);
        return Normalizer.isNormalized(n, Normalizer.Form.NFKC)
                ? n
                : Normalizer.normalize(n, Normalizer.Form.NFKC);
    }

    /**
     * A supplied tag as the Rust aggregator takes it: surrounding white space and one leading
     * {@code #} or {@code ＃} removed; null (dropped) if then empty, longer than
     * {@link #MAX_TAG_CHARS} code points, or holding white space or control characters.
     */
    static String supplied(String raw) {
        String tag = raw.strip();
        if (tag.startsWith("#") || tag.startsWith("\uFF03")) {
            tag = tag.substring(1);
        }
        if (tag.isEmpty() || tag.codePointCount(0, tag.length()) > MAX_TAG_CHARS) {
            return null;
        }
        for (int i = 0; i < tag.length(); ) {
            int cp = tag.codePointAt(i);
            if (Character.isWhitespace(cp) || Character.isSpaceChar(cp) || Character.isISOControl(cp)) {
                return null;
            }
            i += Character.charCount(cp);
        }
        return tag;
    }
}
